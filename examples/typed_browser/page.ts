// The page of `typed_browser`: every call and handler below is typed from the Rust traits
// in `api.rs`, through `api.ts` (generated from them). gotalk.js is loaded by the page
// from the server (`/gotalk/gotalk.js`); its types come from its `gotalk.d.ts`.
import type * as Gotalk from "../../gotalk/js/gotalk";
import {
  ChatNotifier,
  ChatService,
  Everything,
  GreetClient,
  GreetService,
  ShapesClient,
  ShapesErrors,
} from "./api";

declare const gotalk: typeof Gotalk;

const value: Everything = {
  shape: { Circle: { radius: 1.5 } },
  event: { kind: "left", user: "bob", reason: null },
  command: { t: "Move", c: { x: 1, y: -2 } },
  who: 7,
  tags: { a: [1, 2] },
  pages: { items: [{ items: [{ greeting: "hey", n: 1 }], next: null }], next: "2" },
  pair: [true, "x"],
  raw: { anything: [1, "two", null] },
};

/** Runs every kind of call once and lists what came back. */
export async function run(sock: Gotalk.Sock): Promise<string[]> {
  const seen: string[] = [];
  // The server's answer to our chat message arrives as notifications: a message, then
  // an event (in order: a connection's notifications are never reordered).
  const answered = new Promise<void>((resolve) => {
    ChatService.register(sock.handlers, {
      message: (text) => void seen.push(text),
      event: (event) => {
        seen.push(event.kind === "left" ? `${event.user} left: ${event.reason}` : `${event.user} joined`);
        resolve();
      },
    });
  });
  // The page's own Greet, which the server calls.
  GreetService.register(sock.handlers, {
    greet: (input) => ({ greeting: `Hello ${input.firstName}, from the page`, n: 2 }),
    echoText: async (text) => text,
    ping: () => null,
  });

  const out = await GreetClient.greet(sock, { firstName: "Ada", title: "Dr" });
  seen.push(`${out.greeting} (${out.n})`);
  try {
    await GreetClient.greet(sock, { firstName: "" });
    seen.push("no error");
  } catch (e) {
    seen.push(`error: ${(e as Error).message}`);
  }
  seen.push(await GreetClient.echoText(sock, "echo ✓"));
  seen.push(`ping: ${await GreetClient.ping(sock)}`);

  const back = await ShapesClient.roundTrip(sock, value);
  seen.push(JSON.stringify(back) === JSON.stringify(value) ? "round trip: equal" : `round trip: ${JSON.stringify(back)}`);
  if (typeof back.shape === "object" && "Circle" in back.shape) seen.push(`radius ${back.shape.Circle.radius}`);

  seen.push(`area: ${(await ShapesClient.area(sock, { Square: 3 })).toFixed(0)}`);
  for (const shape of ["Point", { Square: -2 }] as const) {
    try {
      await ShapesClient.area(sock, shape);
    } catch (e) {
      // The server's typed error, as the type the Rust trait declares.
      const err = ShapesErrors.area(e);
      if (err?.kind === "NoArea") seen.push("area: no area");
      else if (err?.kind === "Negative") seen.push(`area: negative side ${err.side}`);
      else seen.push(`area: ${(e as Error).message}`);
    }
  }

  const counted: number[] = [];
  for await (const n of ShapesClient.count(sock, 3)) counted.push(n);
  seen.push(`count: ${counted.join(",")}`);

  const upper = ShapesClient.upper(sock, "a");
  upper.write("b");
  upper.end();
  const parts: string[] = [];
  for await (const s of upper.results) parts.push(s);
  seen.push(`upper: ${parts.join(",")}`);

  ChatNotifier.message(sock, "web");
  await answered;
  return seen;
}

declare global {
  interface Window {
    result?: string[];
    failure?: string;
  }
}

const sock = gotalk.connection();
sock.once("open", () => {
  run(sock).then(
    (seen) => {
      window.result = seen;
      document.getElementById("out")!.textContent = seen.join("\n");
    },
    (e: unknown) => {
      window.failure = String(e);
      document.getElementById("out")!.textContent = `failed: ${String(e)}`;
    },
  );
});
