// A page's use of the generated module, checked by `tsc --strict` in CI: every call and
// handler below is typed from the Rust traits in `../typescript.rs`.
import gotalk = require("../../js/gotalk");
import {
  ChatNotifier,
  ChatService,
  Everything,
  GreetClient,
  GreetService,
  ShapesClient,
} from "./api";

export async function run(sock: gotalk.Sock): Promise<string[]> {
  const seen: string[] = [];
  const out = await GreetClient.greet(sock, { firstName: "Ada", title: "Dr" });
  seen.push(out.greeting, String(out.n));
  seen.push(await GreetClient.echoText(sock, "hi"));
  await GreetClient.ping(sock);

  const value: Everything = {
    shape: { Circle: { radius: 1.5 } },
    event: { kind: "left", user: "bob", reason: null },
    command: { t: "Move", c: { x: 1, y: -2 } },
    who: 7,
    tags: { a: [1, 2] },
    pages: { items: [{ items: [{ greeting: "hey", n: 1 }], next: null }], next: "2" },
    pair: [true, "x"],
    raw: { anything: [1, "two"] },
  };
  const back = await ShapesClient.roundTrip(sock, value);
  if (typeof back.shape === "object" && "Circle" in back.shape) {
    seen.push(String(back.shape.Circle.radius));
  }

  for await (const n of ShapesClient.count(sock, 3)) seen.push(String(n));

  const upper = ShapesClient.upper(sock, "a");
  upper.write("b");
  upper.end();
  for await (const s of upper.results) seen.push(s);

  ChatNotifier.message(sock, "hello");
  ChatNotifier.event(sock, { kind: "joined", user: "ada" });

  GreetService.register(sock.handlers, {
    greet: (input) => ({ greeting: `Hello ${input.firstName}`, n: 1 }),
    echoText: async (text) => text,
    ping: () => null,
  });
  ChatService.register(sock.handlers, {
    message: (text) => void seen.push(text),
    event: (event) => void seen.push(event.kind === "left" ? event.user : "joined"),
  });
  return seen;
}
