// Drives the original npm SDK (@serverless/event-gateway-sdk 0.11.0) against a gateway and
// prints what every call resolved to (or the error message it rejected with) as JSON.
// Usage: node sdk_driver.js <eventsUrl> <configUrl> <space> <receiverBaseUrl>
'use strict'
const SDK = require('@serverless/event-gateway-sdk')

const [eventsUrl, configurationUrl, space, receiver] = process.argv.slice(2)
const sdk = new SDK({ url: eventsUrl, configurationUrl, space })
const results = {}

async function step (name, fn) {
  try {
    const value = await fn()
    results[name] = { ok: true, value: value === undefined ? null : value }
  } catch (err) {
    results[name] = { ok: false, error: String(err && err.message ? err.message : err) }
  }
}

async function main () {
  const meta = { service: 'crm', stage: 'dev' }
  await step('createFunction', () => sdk.createFunction({
    functionId: 'crm-dev-addUser', type: 'http', provider: { url: receiver + '/crm' }, metadata: meta }))
  await step('createFunctionDuplicate', () => sdk.createFunction({
    functionId: 'crm-dev-addUser', type: 'http', provider: { url: receiver + '/crm' } }))
  await step('createFunctionSync', () => sdk.createFunction({
    functionId: 'crm-dev-lookup', type: 'http', provider: { url: receiver + '/lookup' }, metadata: meta }))
  await step('createEventType', () => sdk.createEventType({ name: 'user.created', metadata: meta }))
  await step('createEventTypeDuplicate', () => sdk.createEventType({ name: 'user.created' }))
  await step('createEventTypeLookup', () => sdk.createEventType({ name: 'user.lookup' }))
  await step('subscribeAsync', () => sdk.subscribe({
    type: 'async', eventType: 'user.created', functionId: 'crm-dev-addUser', path: '/' + space, metadata: meta }))
  await step('subscribeAsyncDuplicate', () => sdk.subscribe({
    type: 'async', eventType: 'user.created', functionId: 'crm-dev-addUser', path: '/' + space }))
  await step('subscribeSync', () => sdk.subscribe({
    type: 'sync', eventType: 'user.lookup', functionId: 'crm-dev-lookup', path: '/' + space + '/lookup', method: 'post' }))
  await step('createCORS', () => sdk.createCORS({ method: 'POST', path: '/' + space + '/lookup', metadata: meta }))
  await step('listFunctions', () => sdk.listFunctions())
  await step('listFunctionsFiltered', () => sdk.listFunctions({ 'metadata.service': 'crm' }))
  await step('listEventTypes', () => sdk.listEventTypes())
  await step('listSubscriptions', () => sdk.listSubscriptions({ 'metadata.stage': 'dev' }))
  await step('listCORS', () => sdk.listCORS())
  const event = {
    eventType: 'user.created', eventID: 'sdk-1', cloudEventsVersion: '0.1',
    source: '/services/users', contentType: 'application/json',
    data: { username: 'ada', email: 'ada@example.com' } }
  await step('emitAsync', async () => {
    const response = await sdk.emit(event, { path: '/' + space })
    return { status: response.status, body: await response.text() }
  })
  // `eg deploy` and the plugin store a function's subscription at /<space>/ (path default /).
  await step('subscribeSpaceRoot', () => sdk.subscribe({
    type: 'async', eventType: 'user.created', functionId: 'crm-dev-addUser', path: '/' + space + '/' }))
  // The walkthrough (step 4) as its users write it: the space's Events URL as `url` (the SDK
  // keeps the path, so emit posts to /<space>/) and the README's {event, data} shorthand.
  await step('emitShorthand', async () => {
    const walkthrough = new SDK({ url: eventsUrl + '/' + space, space })
    const response = await walkthrough.emit({ event: 'user.created', data: { username: 'grace', email: 'grace@example.com' } })
    return { status: response.status, body: await response.text() }
  })
  await step('emitSync', async () => {
    const response = await sdk.emit({ ...event, eventType: 'user.lookup', eventID: 'sdk-2' }, {
      path: '/' + space + '/lookup', headers: { Origin: 'http://app.test' } })
    return { status: response.status, body: await response.text(), contentType: response.headers.get('content-type'), allowOrigin: response.headers.get('access-control-allow-origin') }
  })
  await step('emitReserved', () => sdk.emit({ ...event, eventType: 'eventgateway.event.received' }))
  await step('updateFunction', () => sdk.updateFunction({
    functionId: 'crm-dev-addUser', type: 'http', provider: { url: receiver + '/crm2' }, metadata: meta }))
  await step('updateEventType', () => sdk.updateEventType({ name: 'user.created', metadata: { service: 'crm', stage: 'prod' } }))
  await step('updateCORS', () => sdk.updateCORS({
    corsId: 'POST%2F' + space + '%2Flookup', method: 'POST', path: '/' + space + '/lookup', allowedOrigins: ['http://app.test'] }))
  await step('deleteFunctionInUse', () => sdk.deleteFunction({ functionId: 'crm-dev-addUser' }))
  const subs = results.listSubscriptions.ok ? results.listSubscriptions.value : []
  await step('unsubscribe', async () => {
    for (const s of subs) await sdk.unsubscribe({ subscriptionId: s.subscriptionId })
    const sync = results.subscribeSync.ok ? results.subscribeSync.value : null
    if (sync) await sdk.unsubscribe({ subscriptionId: sync.subscriptionId })
    const root = results.subscribeSpaceRoot.ok ? results.subscribeSpaceRoot.value : null
    if (root) await sdk.unsubscribe({ subscriptionId: root.subscriptionId })
    return (await sdk.listSubscriptions()).length
  })
  await step('deleteCORS', () => sdk.deleteCORS({ corsId: 'POST%2F' + space + '%2Flookup' }))
  await step('deleteFunction', () => sdk.deleteFunction({ functionId: 'crm-dev-addUser' }))
  await step('deleteEventType', () => sdk.deleteEventType({ name: 'user.created' }))
  await step('listAfter', async () => ({
    functions: (await sdk.listFunctions()).map(f => f.functionId),
    eventTypes: (await sdk.listEventTypes()).map(e => e.name),
    cors: await sdk.listCORS() }))
  process.stdout.write(JSON.stringify(results))
}

main().catch(err => { console.error(err); process.exit(1) })
