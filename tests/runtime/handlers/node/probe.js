'use strict';

exports.asyncHandler = async (event, context) => {
  await new Promise((resolve) => setImmediate(resolve));
  return { pid: process.pid, name: context.functionName, requestId: context.awsRequestId, memory: context.memoryLimitInMB, remaining: context.getRemainingTimeInMillis(), waits: context.callbackWaitsForEmptyEventLoop };
};

exports.promiseHandler = (event) => Promise.resolve({ got: event.data });

exports.logs = async () => {
  console.log('first line');
  console.error('to stderr');
  console.log('multi\nline');
  return 'logged';
};

exports.boom = async () => {
  throw new TypeError('not a function, apparently');
};

exports.callbackError = (event, context, cb) => {
  cb(new Error('callback says no'));
};

exports.sleepForever = (event, context, cb) => {
  console.log('going to sleep');
  setTimeout(() => cb(null, 'late'), 3600 * 1000);
};

exports.exit3 = () => {
  process.exit(3);
};

exports.hog = async () => {
  const chunks = [];
  for (;;) chunks.push(new Array(1024 * 1024).fill(Math.random()));
};

exports.legacySucceed = function (event, context) {
  setTimeout(() => context.succeed({ legacy: true }), 10);
};

exports.plainReturn = function (event) {
  return { plain: event.data };
};

exports.forgetsCallback = (event, context, cb) => {
  setTimeout(() => console.log('done, but no callback'), 10);
};

exports.hogThenExit = (event) => {
  // Off the V8 heap, touched page by page (fill), then gone without an answer.
  globalThis.hog = Buffer.alloc(event.data.mb * 1024 * 1024).fill(1);
  process.exit(1);
};

// -- context.callbackWaitsForEmptyEventLoop --------------------------------------------------

exports.waitsForTimers = (event, context, cb) => {
  setTimeout(() => console.log('timer ran'), 50);
  cb(null, 'answered');
};

exports.endlessInterval = (event, context, cb) => {
  setInterval(() => {}, 50);
  cb(null, 'never sent while the interval runs');
};

exports.errorWithEndlessInterval = (event, context, cb) => {
  setInterval(() => {}, 50);
  cb(new Error('errors do not wait'));
};

exports.asyncWithEndlessInterval = async () => {
  setInterval(() => {}, 50);
  return 'async handlers do not wait';
};

// First call: answers at once and leaves an interval running. Later calls (data.check): wait
// for that interval's next tick in the same warm worker and say how often it ran.
let ticks = 0;
let onTick = null;
exports.doesNotWait = (event, context, cb) => {
  if (event.data.check) {
    return new Promise((resolve) => { onTick = resolve; }).then(() => ({ ticks, pid: process.pid }));
  }
  context.callbackWaitsForEmptyEventLoop = false;
  setInterval(() => {
    ticks += 1;
    if (onTick !== null) onTick();
  }, 20);
  cb(null, { answered: true, pid: process.pid });
  return undefined;
};

// Starts a child, writes "<worker pid> <child pid>" to event.data.path, then waits.
exports.familyToFile = async (event) => {
  const fs = require('fs');
  const child = require('child_process').spawn('sleep', ['60'], { stdio: 'ignore' });
  fs.writeFileSync(event.data.path + '.tmp', `${process.pid} ${child.pid}`);
  fs.renameSync(event.data.path + '.tmp', event.data.path);
  await new Promise((resolve) => setTimeout(resolve, event.data.seconds * 1000));
  return 'slept';
};

// Failures without an Error: Lambda fails each of them all the same.
exports.rejectsNull = async () => { throw null; };
exports.rejectsUndefined = () => Promise.reject(undefined);
exports.throwsNull = () => { throw null; };
exports.failsNull = (event, context) => { context.fail(null); };
exports.timerThrowsNull = (event, context, cb) => { setTimeout(() => { throw null; }, 1); };

// A result JSON.stringify refuses.
exports.bigInt = async () => BigInt(5);

// Answers at once, then throws null from a timer: outside any invocation.
exports.throwsNullLater = (event, context, cb) => {
  context.callbackWaitsForEmptyEventLoop = false;
  cb(null, 'answered');
  setTimeout(() => { throw null; }, 10);
};
