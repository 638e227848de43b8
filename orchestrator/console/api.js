// The HTTP API from the browser: JSON in, JSON out, problems (RFC 9457) raised as errors
// carrying the server's one-line detail. The bearer token, when the server asks for one,
// lives in this tab's sessionStorage only.

const TOKEN = "orch-token";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN, token);
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    if (response.status === 401) document.getElementById("token-form").hidden = false;
    throw new ApiError(response.status, (data && data.detail) || response.statusText);
  }
  return data;
}
