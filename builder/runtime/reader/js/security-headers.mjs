// The headers of every response the runtime builds itself (Service Worker or worker mode's Worker).
// Pure, so `node --test tests/runtime/` covers it.

/**
 * `headers` (`[[name, value], ...]`) plus `securityHeaders`, the build's headers for every response
 * the Service Worker or the Worker builds (config.mjs `securityHeaders`, computed by builder/csp.py:
 * Content-Security-Policy, X-Content-Type-Options, Referrer-Policy). Datasette's own values of those
 * headers are dropped, except a Content-Security-Policy of its own, which stays beside ours (a
 * second policy can only forbid more).
 */
export function withSecurityHeaders(headers, securityHeaders) {
  const ours = new Set(securityHeaders.map(([name]) => name.toLowerCase()));
  ours.delete("content-security-policy");
  return [...headers.filter(([name]) => !ours.has(name.toLowerCase())), ...securityHeaders];
}
