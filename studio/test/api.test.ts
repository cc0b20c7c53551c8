import { describe, expect, it } from "vitest";
import { ApiError, Client, readToken, TOKEN_HEADER } from "../src/api";

function recorder(status: number, body: unknown) {
  const calls: { url: string; init?: RequestInit }[] = [];
  const fetcher = async (url: string, init?: RequestInit): Promise<Response> => {
    calls.push({ url, init });
    return new Response(typeof body === "string" ? body : JSON.stringify(body), { status });
  };
  return { calls, fetcher };
}

describe("readToken", () => {
  it("reads the meta tag the server writes", () => {
    document.head.innerHTML = '<meta name="rulekit-studio-token" content="s3cret">';
    expect(readToken(document)).toBe("s3cret");
  });
  it("is empty without one", () => {
    document.head.innerHTML = "";
    expect(readToken(document)).toBe("");
  });
});

describe("Client", () => {
  it.each(["GET", "POST", "PUT"])("sends the token on %s", async (method) => {
    const { calls, fetcher } = recorder(200, { ok: true });
    const client = new Client("tok", fetcher);
    await client.call(method, "/api/x", method === "GET" ? undefined : { a: 1 });
    const headers = calls[0].init!.headers as Record<string, string>;
    expect(headers[TOKEN_HEADER]).toBe("tok");
    expect(calls[0].init!.method).toBe(method);
  });

  it("sends JSON bodies", async () => {
    const { calls, fetcher } = recorder(200, {});
    await new Client("t", fetcher).post("/api/check", { text: "x" });
    expect(calls[0].init!.body).toBe('{"text":"x"}');
    expect((calls[0].init!.headers as Record<string, string>)["Content-Type"]).toBe("application/json");
  });

  it("turns a problem into an ApiError with its code", async () => {
    const problem = { type: "about:blank", title: "Conflict", status: 409, detail: "changed", code: "changed_on_disk", etag: "abc" };
    const { fetcher } = recorder(409, problem);
    const err = await new Client("t", fetcher).put("/api/file", {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe("changed_on_disk");
    expect((err as ApiError).status).toBe(409);
    expect((err as ApiError).problem.etag).toBe("abc");
  });

  it("survives an error that is not JSON", async () => {
    const { fetcher } = recorder(500, "<html>boom</html>");
    const err = (await new Client("t", fetcher).get("/api/files").catch((e: unknown) => e)) as ApiError;
    expect(err.status).toBe(500);
    expect(err.message).toContain("boom");
  });
});
