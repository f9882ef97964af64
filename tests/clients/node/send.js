// Drive a Touchpoint server with @segment/analytics-node, as a brand's backend would.
// Usage: node send.js HOST WRITE_KEY PREFIX
// Sends every event twice with the same messageIds (the second pass is a forced
// retry, which must add nothing) and exits non-zero on any delivery error.
const { Analytics } = require('@segment/analytics-node')

async function pass (host, writeKey, p) {
  const errors = []
  const analytics = new Analytics({ writeKey, host, maxEventsInBatch: 20, flushInterval: 200, maxRetries: 3 })
  analytics.on('error', (e) => errors.push(e))
  analytics.track({ anonymousId: `${p}-anon`, event: 'Product Viewed', properties: { product_id: 'sku-1', price: 19.99 }, messageId: `${p}-m1` })
  analytics.identify({ userId: `${p}-user`, anonymousId: `${p}-anon`, traits: { email: `${p}@example.com`, phone: '13900000001', name: 'Node Client' }, messageId: `${p}-m2` })
  analytics.track({
    userId: `${p}-user`,
    event: 'Order Completed',
    properties: {
      order_id: `${p}-order`, total: 49.98, currency: 'CNY',
      products: [{ sku: 'sku-1', name: 'Sneaker', price: 19.99, quantity: 2, category: 'shoes', brand: 'Acme' }, { sku: 'sku-2', price: 10, quantity: 1 }]
    },
    messageId: `${p}-m3`
  })
  await analytics.closeAndFlush({ timeout: 20000 })
  if (errors.length) {
    console.error('delivery errors:', errors.map(String))
    process.exit(1)
  }
}

async function main () {
  const [host, writeKey, prefix] = process.argv.slice(2)
  await pass(host, writeKey, prefix)
  await pass(host, writeKey, prefix)
  console.log('node: sent')
}

main().catch((e) => { console.error(e); process.exit(1) })
