"use strict";
(() => {
  // examples/typed_browser/api.ts
  function remoteError(err) {
    const e = err;
    return e && e.isGotalkRemoteError && !e.isGotalkRetry && e.data !== void 0 ? e.data : void 0;
  }
  function results(source) {
    const queue = [];
    const decoder = new TextDecoder();
    let ended = false;
    let failure = null;
    let wake = null;
    const poke = () => {
      const w = wake;
      wake = null;
      if (w) w();
    };
    source.on("data", (chunk) => {
      try {
        queue.push(JSON.parse(decoder.decode(chunk)));
      } catch (e) {
        failure = e;
      }
      poke();
    });
    source.on("end", () => {
      ended = true;
      poke();
    });
    source.on("error", (err) => {
      failure = err;
      poke();
    });
    const iterator = {
      [Symbol.asyncIterator]() {
        return iterator;
      },
      async next() {
        for (; ; ) {
          if (queue.length > 0) return { value: queue.shift(), done: false };
          if (failure) throw failure;
          if (ended) return { value: void 0, done: true };
          await new Promise((resolve) => wake = resolve);
        }
      }
    };
    return iterator;
  }
  function writer(stream, first) {
    const out = results(stream);
    stream.write(JSON.stringify(first));
    return {
      write: (part) => void stream.write(JSON.stringify(part)),
      end: () => void stream.end(),
      results: out
    };
  }
  function serve(answer, work) {
    Promise.resolve().then(work).then(answer, (err) => answer.error(err instanceof Error ? err : String(err)));
  }
  var GreetClient = {
    /**
     * Greets one person.
     */
    greet(sock2, input, options = {}) {
      return sock2.request("greet", input, options);
    },
    echoText(sock2, input, options = {}) {
      return sock2.request("echo", input, options);
    },
    ping(sock2, options = {}) {
      return sock2.request("ping", null, options);
    }
  };
  var GreetService = {
    register(handlers, impl) {
      handlers.handleRequest("greet", (input, answer) => serve(answer, () => impl.greet(input)));
      handlers.handleRequest("echo", (input, answer) => serve(answer, () => impl.echoText(input)));
      handlers.handleRequest("ping", (input, answer) => serve(answer, () => impl.ping()));
    }
  };
  var ShapesClient = {
    /**
     * Sends a value of every shape back.
     */
    roundTrip(sock2, input, options = {}) {
      return sock2.request("shapes.round_trip", input, options);
    },
    /**
     * Counts up to `n`, a result each.
     */
    count(sock2, input, options = {}) {
      return results(sock2.streamResults("shapes.count", input, options));
    },
    /**
     * Upper-cases every part it is sent.
     */
    upper(sock2, first, options = {}) {
      return writer(sock2.streamRequest("shapes.upper", options), first);
    },
    /**
     * The shape's area; a typed error for a shape without one.
     */
    area(sock2, input, options = {}) {
      return sock2.request("shapes.area", input, options);
    }
  };
  var ShapesErrors = {
    area: (err) => remoteError(err)
  };
  var ChatNotifier = {
    message(sock2, input) {
      sock2.notify("chat message", input);
    },
    event(sock2, input) {
      sock2.notify("event", input);
    }
  };
  var ChatService = {
    register(handlers, impl) {
      handlers.handleNotification("chat message", (input) => impl.message(input));
      handlers.handleNotification("event", (input) => impl.event(input));
    }
  };

  // examples/typed_browser/page.ts
  var value = {
    shape: { Circle: { radius: 1.5 } },
    event: { kind: "left", user: "bob", reason: null },
    command: { t: "Move", c: { x: 1, y: -2 } },
    who: 7,
    tags: { a: [1, 2] },
    pages: { items: [{ items: [{ greeting: "hey", n: 1 }], next: null }], next: "2" },
    pair: [true, "x"],
    raw: { anything: [1, "two", null] }
  };
  async function run(sock2) {
    const seen = [];
    const answered = new Promise((resolve) => {
      ChatService.register(sock2.handlers, {
        message: (text) => void seen.push(text),
        event: (event) => {
          seen.push(event.kind === "left" ? `${event.user} left: ${event.reason}` : `${event.user} joined`);
          resolve();
        }
      });
    });
    GreetService.register(sock2.handlers, {
      greet: (input) => ({ greeting: `Hello ${input.firstName}, from the page`, n: 2 }),
      echoText: async (text) => text,
      ping: () => null
    });
    const out = await GreetClient.greet(sock2, { firstName: "Ada", title: "Dr" });
    seen.push(`${out.greeting} (${out.n})`);
    try {
      await GreetClient.greet(sock2, { firstName: "" });
      seen.push("no error");
    } catch (e) {
      seen.push(`error: ${e.message}`);
    }
    seen.push(await GreetClient.echoText(sock2, "echo \u2713"));
    seen.push(`ping: ${await GreetClient.ping(sock2)}`);
    const back = await ShapesClient.roundTrip(sock2, value);
    seen.push(JSON.stringify(back) === JSON.stringify(value) ? "round trip: equal" : `round trip: ${JSON.stringify(back)}`);
    if (typeof back.shape === "object" && "Circle" in back.shape) seen.push(`radius ${back.shape.Circle.radius}`);
    seen.push(`area: ${(await ShapesClient.area(sock2, { Square: 3 })).toFixed(0)}`);
    for (const shape of ["Point", { Square: -2 }]) {
      try {
        await ShapesClient.area(sock2, shape);
      } catch (e) {
        const err = ShapesErrors.area(e);
        if (err?.kind === "NoArea") seen.push("area: no area");
        else if (err?.kind === "Negative") seen.push(`area: negative side ${err.side}`);
        else seen.push(`area: ${e.message}`);
      }
    }
    const counted = [];
    for await (const n of ShapesClient.count(sock2, 3)) counted.push(n);
    seen.push(`count: ${counted.join(",")}`);
    const upper = ShapesClient.upper(sock2, "a");
    upper.write("b");
    upper.end();
    const parts = [];
    for await (const s of upper.results) parts.push(s);
    seen.push(`upper: ${parts.join(",")}`);
    ChatNotifier.message(sock2, "web");
    await answered;
    return seen;
  }
  var sock = gotalk.connection();
  sock.once("open", () => {
    run(sock).then(
      (seen) => {
        window.result = seen;
        document.getElementById("out").textContent = seen.join("\n");
      },
      (e) => {
        window.failure = String(e);
        document.getElementById("out").textContent = `failed: ${String(e)}`;
      }
    );
  });
})();
