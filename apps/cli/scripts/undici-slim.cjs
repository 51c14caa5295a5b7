'use strict';
// What img's transports take from undici (Agent, and request with an explicit dispatcher), for the
// fast path's bundle only (scripts/build-fast-path.mjs puts it in place of `undici`). undici's index
// also evaluates fetch, WebSocket, EventSource, caches, mocks and more: 140 ms of a 0.4 s command
// here, against 57 ms for the dispatcher and its API. The packages themselves import undici as it is.

const Agent = require('undici/lib/dispatcher/agent.js');
const Dispatcher = require('undici/lib/dispatcher/dispatcher.js');
const api = require('undici/lib/api/index.js');
const { InvalidArgumentError } = require('undici/lib/core/errors.js');
const { parseURL } = require('undici/lib/core/util.js');

// As undici's index does: every dispatcher gets request, stream, pipeline, upgrade and connect.
Object.assign(Dispatcher.prototype, api);

/** undici's top-level `request(url, options)`, for the calls that name their dispatcher. */
function request(url, options) {
  if (!options || typeof options !== 'object' || !options.dispatcher) {
    throw new InvalidArgumentError("img's bundled undici needs an explicit dispatcher");
  }
  if (options.path != null) throw new InvalidArgumentError("img's bundled undici takes the path in the URL");
  const { dispatcher, ...rest } = options;
  const target = parseURL(url);
  return dispatcher.request({
    ...rest,
    origin: target.origin,
    path: target.search ? `${target.pathname}${target.search}` : target.pathname,
    method: rest.method || (rest.body ? 'PUT' : 'GET'),
  });
}

module.exports = { Agent, Dispatcher, request };
