// How a page calls the API (included in the pages' scripts): JSON, with the X-Garden header a
// change needs (web/server.py), cookies of this origin only; the answer's status and body.
async function request(method, path, body) {
  const options = {method, headers: {"X-Garden": "1"}, credentials: "same-origin"};
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let data = {};
  try { data = await response.json(); } catch (e) { data = {error: "the server answered " + response.status}; }
  return {status: response.status, ok: response.ok, data};
}
