//! The TypeScript modules made from the examples' traits (feature `typescript`):
//! `typed_browser/api.ts` and `websocket/chat/api.ts` are committed, and this test fails
//! when the traits would make other ones. Regenerate them with
//! `GOTALK_TYPESCRIPT=write cargo test -p gotalk-examples --test typescript` (or each
//! example's `-- --write-ts`). CI checks them and the pages using them with
//! `tsc --strict`, and runs the pages in Chromium.

// The examples' contracts, for their TypeScript only (their traits are implemented by
// the examples themselves).
#[path = "../typed_browser/api.rs"]
#[allow(dead_code)]
mod api;
#[path = "../websocket/chat/api.rs"]
#[allow(dead_code)]
mod chat_api;

#[test]
fn the_committed_modules_are_what_the_traits_make() {
    let dir = env!("CARGO_MANIFEST_DIR");
    for (module, path) in [
        (api::typescript(), "typed_browser/api.ts"),
        (chat_api::typescript(), "websocket/chat/api.ts"),
    ] {
        if let Err(stale) = module.check_or_write(format!("{dir}/{path}")) {
            panic!("{stale}");
        }
    }
}

#[test]
fn wire_names_types_and_shapes_come_from_the_traits() {
    let ts = api::typescript().render();
    for expected in [
        // serde's renames and skips, optional fields, u64 as number.
        "export type GreetIn = { firstName: string, \n/**\n * Left out of the JSON when absent.\n */\ntitle?: string, };",
        "export type GreetOut = { greeting: string, n: number, };",
        "export type Event = { \"kind\": \"joined\", user: string, } | { \"kind\": \"left\", user: string, reason: string | null, };",
        "export type IdOrName = number | string;",
        "export type Page<T> = { items: Array<T>, next: string | null, };",
        // Calls with their wire names.
        "greet(sock: Sock, input: GreetIn, options: CallOptions = {}): Promise<GreetOut> {\n    return sock.request<GreetOut>(\"greet\", input, options);",
        "echoText(sock: Sock, input: string, options: CallOptions = {}): Promise<string> {\n    return sock.request<string>(\"echo\", input, options);",
        "count(sock: Sock, input: number, options: CallOptions = {}): Results<number> {\n    return results<number>(sock.streamResults(\"shapes.count\", input, options));",
        "upper(sock: Sock, first: string, options: CallOptions = {}): Writer<string, string> {",
        "sock.notify(\"chat message\", input);",
        "ping(sock: Sock, options: CallOptions = {}): Promise<null> {\n    return sock.request<null>(\"ping\", null, options);",
        // The page's side.
        "handlers.handleRequest(\"greet\", (input, answer) => serve<GreetOut>(answer, () => impl.greet(input as GreetIn)));",
        "handlers.handleNotification(\"chat message\", (input) => impl.message(input as string));",
        "handlers.handleRequest(\"ping\", (input, answer) => serve<null>(answer, () => impl.ping()));",
        // A typed error: declared, and read from a rejected call as that type.
        "export type AreaError = { \"kind\": \"NoArea\" } | { \"kind\": \"Negative\", side: number, };",
        "export const ShapesErrors = {\n  area: (err: unknown): AreaError | undefined => remoteError<AreaError>(err),\n} as const;",
    ] {
        assert!(ts.contains(expected), "missing:\n{expected}\n\nin:\n{ts}");
    }
    // Each type once, by name (whatever order ts-rs visits them in).
    assert_eq!(ts.matches("export type GreetOut =").count(), 1);
    let declared: Vec<&str> = ts
        .lines()
        .filter_map(|l| l.strip_prefix("export type ")?.split([' ', '<']).next())
        .collect();
    let mut sorted = declared.clone();
    sorted.sort();
    assert_eq!(declared, sorted);
    assert_eq!(declared.len(), 10, "{declared:?}");
    // A trait without typed errors has no `…Errors`.
    assert!(!ts.contains("GreetErrors"));
}
