'use strict';

// The original Event Gateway example's CRM handler, unchanged.
module.exports.handler = (event, context, callback) => {
  const user = event.data;
  console.log('Saving user to CRM:', user);
  callback(null, { message: 'success' });
};
