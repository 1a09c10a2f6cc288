'use strict';

const util = require('util');

exports.multiLineObject = async (event) => {
  const user = { ...event.data, address: { street: '1 Test Way', city: 'Testville' } };
  console.log('Saving user to CRM:', user);
  console.error('an error\nover two lines');
  console.log('single');
  return util.format('Saving user to CRM:', user);
};

exports.rawWrites = async () => {
  process.stdout.write(Buffer.from('raw one\nraw two\n'));
  process.stdout.write('string one\nstring two\n', 'latin1');
  return null;
};

exports.bigRecord = async (event) => {
  const lines = [];
  for (let index = 0; index < event.data.lines; index += 1) {
    lines.push(`${String(index).padStart(6, '0')} ${'x'.repeat(96)}`);
  }
  console.log(lines.join('\n'));
  console.log('after');
  return null;
};
