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
