// Runs inside a Node.js worker process: loads one handler, then answers invocations.
//
// Started by the gateway as `node --max-old-space-size=<MB> node_worker.js '<config JSON>'`
// with the bundle directory as its working directory. The frames on the two extra pipe ends
// are described in protocol.py: `>II` (header length, body length), a JSON header, a body.
// One invocation at a time: read a request, call the handler, print the sentinel line on
// stdout and stderr once everything the handler printed is in the pipes (writes to pipes are
// synchronous on Linux until a pipe is full; libuv finishes the rest later), answer. One
// console.log is one log entry (see "output").
'use strict';

const fs = require('fs');
const net = require('net');
const path = require('path');
const url = require('url');

const config = JSON.parse(process.argv[2]);
const bundleDir = process.cwd();

// -- frames ---------------------------------------------------------------------------------

function writeAll(fd, buffer) {
  let offset = 0;
  while (offset < buffer.length) {
    try {
      offset += fs.writeSync(fd, buffer, offset);
    } catch (err) {
      if (err.code !== 'EAGAIN') throw err;
    }
  }
}

function writeFrame(header, body) {
  const head = Buffer.from(JSON.stringify(header));
  const data = Buffer.from(body || '');
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32BE(head.length, 0);
  prefix.writeUInt32BE(data.length, 4);
  writeAll(config.out_fd, Buffer.concat([prefix, head, data]));
}

// -- output: one write, one record ----------------------------------------------------------
// console.log & co. write each call's whole text with one stream.write: one log entry, however
// many lines. The inner line ends of such a write get 0xFF before the newline (CONTINUED in
// protocol.py; UTF-8 never contains it), so the parent joins them; trailing newlines do not.

const MARKED_NEWLINE = Buffer.from([0xff, 0x0a]);

function markRecord(text) {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 10) end -= 1;
  const body = text.slice(0, end);
  if (!body.includes('\n')) return text;
  const pieces = [];
  for (const line of body.split('\n')) {
    if (pieces.length) pieces.push(MARKED_NEWLINE);
    pieces.push(Buffer.from(line, 'utf8'));
  }
  pieces.push(Buffer.from(text.slice(end), 'utf8'));
  return Buffer.concat(pieces);
}

function writeRecords(stream) {
  const write = stream.write;
  stream.write = function writeRecord(chunk, encoding, callback) {
    // Text only; Buffers and other encodings are bytes the handler framed itself.
    const utf8 = typeof encoding !== 'string' || /^utf-?8$/i.test(encoding);
    const marked = typeof chunk === 'string' && utf8 ? markRecord(chunk) : chunk;
    if (marked === chunk) return write.apply(this, arguments);
    return write.call(this, marked, typeof encoding === 'function' ? encoding : callback);
  };
}

writeRecords(process.stdout);
writeRecords(process.stderr);

// -- errors ---------------------------------------------------------------------------------

function errorObject(err) {
  if (err instanceof Error) {
    return {
      errorType: err.name || (err.constructor && err.constructor.name) || 'Error',
      errorMessage: err.message,
      stackTrace: typeof err.stack === 'string' ? err.stack.split('\n') : [],
    };
  }
  // callback('text') or a rejected non-Error: Lambda names the JavaScript type.
  return { errorType: typeof err, errorMessage: String(err), stackTrace: [] };
}

// Lambda fails an invocation whatever value it failed with; null and undefined carry no
// message of their own, so one says what happened.
function failure(err, what) {
  return err === null || err === undefined ? new Error(`${what} ${err}`) : err;
}

function initError(errorType, err) {
  const shape = errorObject(err);
  return { errorType, errorMessage: `${shape.errorType}: ${shape.errorMessage}`, stackTrace: shape.stackTrace };
}

// -- loading --------------------------------------------------------------------------------

function findModule(modulePath) {
  const base = path.resolve(bundleDir, modulePath);
  for (const extension of ['.js', '.cjs', '.mjs']) {
    if (fs.existsSync(base + extension)) return base + extension;
  }
  return null;
}

async function loadHandler(handlerName) {
  const dot = handlerName.lastIndexOf('.');
  if (dot <= 0 || dot === handlerName.length - 1) {
    return { error: { errorType: 'Runtime.MalformedHandlerName', errorMessage: `Bad handler '${handlerName}': expected 'module.function'`, stackTrace: [] } };
  }
  const modulePath = handlerName.slice(0, dot);
  const functionName = handlerName.slice(dot + 1);
  const file = findModule(modulePath);
  if (file === null) {
    return { error: { errorType: 'Runtime.ImportModuleError', errorMessage: `Error: Cannot find module '${modulePath}'`, stackTrace: [] } };
  }
  let mod;
  try {
    if (file.endsWith('.mjs')) {
      mod = await import(url.pathToFileURL(file).href);
    } else {
      try {
        mod = require(file);
      } catch (err) {
        if (err.code !== 'ERR_REQUIRE_ESM') throw err;
        mod = await import(url.pathToFileURL(file).href);
      }
    }
  } catch (err) {
    const type = err instanceof SyntaxError ? 'Runtime.UserCodeSyntaxError' : 'Runtime.ImportModuleError';
    return { error: initError(type, err) };
  }
  const handler = mod && mod[functionName];
  if (typeof handler !== 'function') {
    return { error: { errorType: 'Runtime.HandlerNotFound', errorMessage: `${handlerName} is undefined or not exported`, stackTrace: [] } };
  }
  return { handler };
}

// -- invocations ----------------------------------------------------------------------------

let handler = null;
let loadError = null;
let current = null; // the invocation in progress: { seq, requestId, finish, fallback, waiting }
let input = null; // the request pipe; unref'd while an invocation runs (see 'beforeExit')
let peakRssKiB = 0;

function maxMemoryUsedMB() {
  // VmHWM, not resourceUsage().maxRSS: Linux carries the peak of the image before exec (the
  // gateway, forked) over into getrusage. Elsewhere: track memoryUsage.rss() after each call.
  try {
    const match = /VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'latin1'));
    if (match) return Math.floor(Number(match[1]) / 1024);
  } catch (_) { /* no /proc */ }
  peakRssKiB = Math.max(peakRssKiB, process.memoryUsage.rss() / 1024);
  return Math.floor(peakRssKiB / 1024);
}

// A write to a full pipe is finished by libuv later: the sentinel waits until none is queued
// (for at most 2 s, in case something keeps printing after the handler finished).
function whenOutputWritten(then, giveUpAt = Date.now() + 2000) {
  const queued = (stream) => !stream.destroyed && stream.writableLength > 0;
  if ((queued(process.stdout) || queued(process.stderr)) && Date.now() < giveUpAt) {
    setTimeout(whenOutputWritten, 1, then, giveUpAt);
  } else {
    then();
  }
}

function finishInvocation(seq, started, ok, payload, retire) {
  const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
  whenOutputWritten(() => {
    const marker = `${config.sentinel}:${seq}\n`;
    try { fs.writeSync(1, marker); } catch (_) { /* stdout closed: the parent copes with EOF */ }
    try { fs.writeSync(2, marker); } catch (_) { /* idem */ }
    writeFrame({ type: 'result', seq, ok, duration_ms: durationMs, max_memory_used_mb: maxMemoryUsedMB(), retire }, payload);
  });
}

function invoke(header, body) {
  const seq = header.seq;
  const requestId = header.request_id;
  const deadline = Date.now() + header.timeout_ms;
  if (handler === null) {
    finishInvocation(seq, process.hrtime.bigint(), false, JSON.stringify(loadError), true);
    return;
  }
  let finished = false;
  const started = process.hrtime.bigint();
  const finish = (err, result, retire) => {
    if (finished) return;
    finished = true;
    current = null;
    input.ref();
    if (err !== null && err !== undefined) {
      const shape = errorObject(err);
      console.error(`Invoke Error \t${JSON.stringify(shape)}`);
      finishInvocation(seq, started, false, JSON.stringify(shape), Boolean(retire));
      return;
    }
    let payload;
    try {
      payload = JSON.stringify(result === undefined ? null : result);
    } catch (marshalErr) {
      const shape = { errorType: 'Runtime.MarshalError', errorMessage: `Unable to stringify response body: ${marshalErr.message}`, stackTrace: [] };
      console.error(`Invoke Error \t${JSON.stringify(shape)}`);  // logged as any failure is
      finishInvocation(seq, started, false, JSON.stringify(shape), false);
      return;
    }
    finishInvocation(seq, started, true, payload, false);
  };
  current = { seq, requestId, finish, fallback: undefined, waiting: null };
  // With the request pipe unref'd, the event loop empties once the handler has nothing left
  // to do: that is when Lambda ends a callback-style invocation that never called back, and
  // when it sends what the callback gave (see 'beforeExit').
  input.unref();
  const context = {
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME || '',
    functionVersion: '$LATEST',
    awsRequestId: requestId,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE || '',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    // The pre-callback API, still used by old examples: these never wait (as in Lambda).
    succeed: (result) => finish(null, result),
    fail: (err) => finish(failure(err, 'context.fail called with')),
    done: (err, result) => finish(err, result),
  };
  // Lambda's callback: an error goes at once; a result waits for the event loop to empty
  // (the handler's timers and sockets run first, and their output is this invocation's)
  // unless the handler set callbackWaitsForEmptyEventLoop = false by the time it calls back.
  // Then the result goes at once, and what is still pending keeps running in this warm
  // worker: Lambda freezes it until the next invocation instead. A later callback replaces
  // a result still waiting; the invocation's timeout (the parent's) covers the wait.
  const callback = (err, result) => {
    if (finished) return;
    if ((err === null || err === undefined) && context.callbackWaitsForEmptyEventLoop) {
      current.waiting = { result };
    } else {
      finish(err, result);
    }
  };
  let event;
  try {
    event = body.length ? JSON.parse(body.toString('utf8')) : {};
  } catch (err) {
    finish(err);
    return;
  }
  try {
    const returned = handler(event, context, callback);
    if (returned && typeof returned.then === 'function') {
      returned.then((result) => finish(null, result), (err) => finish(failure(err, 'Promise rejected with')));
    } else if (current !== null) {
      // Not a promise: wait for callback / context.succeed / context.done, or for the event
      // loop to empty. A plain (event, context) function's return value is then the result.
      current.fallback = handler.length < 3 ? returned : undefined;
    }
  } catch (err) {
    finish(failure(err, 'Handler threw'));
  }
}

// An error thrown from a timer or an unhandled rejection belongs to the invocation in
// progress; Lambda fails it and restarts the runtime, so this worker asks to be retired.
function fatal(err) {
  const error = failure(err, 'Uncaught throw of');
  if (current !== null) {
    current.finish(error, undefined, true);
  } else {
    console.error(`Uncaught error outside an invocation: ${error && error.stack ? error.stack : error}`);
  }
}
process.on('uncaughtException', fatal);
process.on('beforeExit', () => {
  if (current === null) return;
  current.finish(null, current.waiting !== null ? current.waiting.result : current.fallback);
});
process.on('unhandledRejection', (reason) => fatal(failure(reason, 'Unhandled promise rejection with')));

// -- main -----------------------------------------------------------------------------------

function readRequests() {
  input = new net.Socket({ fd: config.in_fd, readable: true, writable: false });
  let buffered = Buffer.alloc(0);
  input.on('data', (chunk) => {
    buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
    while (buffered.length >= 8) {
      const headLength = buffered.readUInt32BE(0);
      const bodyLength = buffered.readUInt32BE(4);
      if (buffered.length < 8 + headLength + bodyLength) break;
      const header = JSON.parse(buffered.subarray(8, 8 + headLength).toString('utf8'));
      const body = buffered.subarray(8 + headLength, 8 + headLength + bodyLength);
      buffered = buffered.subarray(8 + headLength + bodyLength);
      if (header.type === 'invoke') invoke(header, body);
    }
  });
  // Only the gateway holds the request pipe's write end: its end (a stop, or the gateway's
  // death, even by SIGKILL) ends this sandbox, with whatever the handler started in our
  // process group (process.exit alone would leave those running, unowned).
  input.on('end', endSandbox);
  input.on('error', endSandbox);
}

function endSandbox() {
  try {
    process.kill(-process.pid, 'SIGKILL'); // ESRCH unless we lead the group (the gateway's)
  } catch (_) { /* not a group leader: just exit */ }
  process.exit(0);
}

async function main() {
  const loaded = await loadHandler(config.handler);
  if (loaded.error) {
    loadError = loaded.error;
    console.error(`${loadError.errorType}: ${loadError.errorMessage}`);
  } else {
    handler = loaded.handler;
  }
  writeFrame({ type: 'ready', pid: process.pid, init_error: loadError !== null, max_memory_used_mb: maxMemoryUsedMB() }, loadError ? JSON.stringify(loadError) : '');
  readRequests();
}

main();
