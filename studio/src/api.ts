// The studio's HTTP client: every /api call carries the per-process token the server put
// in the page's <meta name="rulekit-studio-token"> (the server answers 403 without it), and
// every error comes back as an ApiError holding the RFC 9457 problem the server sent.

export const TOKEN_META = "rulekit-studio-token";
export const TOKEN_HEADER = "X-Rulekit-Studio-Token";

export interface Problem {
  type?: string;
  title?: string;
  status: number;
  detail?: string;
  code?: string;
  [key: string]: unknown;
}

export class ApiError extends Error {
  constructor(public readonly problem: Problem) {
    super(problem.detail ?? problem.title ?? `HTTP ${problem.status}`);
    this.name = "ApiError";
  }
  get status(): number {
    return this.problem.status;
  }
  get code(): string | undefined {
    return this.problem.code;
  }
}

/** The token from the page's meta tag ("" when the page has none, e.g. in a unit test). */
export function readToken(doc: Document): string {
  const meta = doc.querySelector(`meta[name="${TOKEN_META}"]`);
  return meta?.getAttribute("content") ?? "";
}

type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

export class Client {
  constructor(
    private readonly token: string,
    private readonly fetcher: Fetch = (input, init) => fetch(input, init),
  ) {}

  /** Call ``path`` (GET without a body, POST/PUT with a JSON one) and return its JSON. */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { [TOKEN_HEADER]: this.token, Accept: "application/json" };
    const init: RequestInit = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await this.fetcher(path, init);
    const text = await response.text();
    let data: unknown = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const problem: Problem =
        data && typeof data === "object"
          ? { ...(data as Problem), status: (data as Problem).status ?? response.status }
          : { status: response.status, title: response.statusText, detail: text.slice(0, 200) };
      throw new ApiError(problem);
    }
    return data as T;
  }

  get<T>(path: string): Promise<T> {
    return this.call<T>("GET", path);
  }
  post<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>("POST", path, body);
  }
  put<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>("PUT", path, body);
  }
}
