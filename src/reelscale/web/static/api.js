// The platform's HTTP API, with the session kept in localStorage and tokens refreshed
// transparently: a 401 triggers one refresh (rotating the refresh token) and a retry.

const KEY = "reelscale.session";

export const session = {
  load() {
    try { return JSON.parse(localStorage.getItem(KEY)) || {}; } catch { return {}; }
  },
  save(patch) {
    const next = { ...this.load(), ...patch };
    localStorage.setItem(KEY, JSON.stringify(next));
    return next;
  },
  clear() {
    const { device_token } = this.load(); // the device stays trusted after sign-out
    localStorage.setItem(KEY, JSON.stringify({ device_token }));
  },
};

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

let refreshing = null;

async function refresh() {
  const { refresh_token } = session.load();
  if (!refresh_token) throw new ApiError(401, { detail: "signed out" });
  refreshing ??= fetch("/v1/auth/refresh", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ refresh_token }),
  }).then(async (r) => {
    const body = await r.json().catch(() => ({}));
    if (!r.ok) { session.clear(); throw new ApiError(r.status, body); }
    session.save({ access_token: body.access_token, refresh_token: body.refresh_token });
  }).finally(() => { refreshing = null; });
  return refreshing;
}

export async function api(path, { method = "GET", body, headers = {}, raw = false, retry = true } = {}) {
  const { access_token } = session.load();
  const init = { method, headers: { ...headers } };
  if (access_token) init.headers.authorization = `Bearer ${access_token}`;
  if (body !== undefined && !(body instanceof Blob) && !(body instanceof ArrayBuffer)) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  } else if (body !== undefined) {
    init.body = body;
  }
  const response = await fetch(path, init);
  if (response.status === 401 && retry && session.load().refresh_token) {
    await refresh();
    return api(path, { method, body, headers, raw, retry: false });
  }
  if (raw) return response;
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export function claims() {
  const { access_token } = session.load();
  if (!access_token) return null;
  try {
    const part = access_token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  } catch { return null; }
}

export async function signIn(email, password) {
  const { device_token } = session.load();
  const body = { email, password };
  if (device_token) body.device_token = device_token;
  const tokens = await api("/v1/auth/login", { method: "POST", body, retry: false });
  session.save({
    access_token: tokens.access_token, refresh_token: tokens.refresh_token,
    device_token: tokens.device_token, profile: null,
  });
}

export async function signOut() {
  const { refresh_token } = session.load();
  try { await api("/v1/auth/logout", { method: "POST", body: { refresh_token }, retry: false }); } catch { /* already gone */ }
  session.clear();
}
