// Stripe's official Node client (stripe-node, pinned in package.json to the release
// that pins API version 2026-08-26.dahlia) runs a customer -> invoice -> pay ->
// refund flow against stripe_sandbox. Usage: node flow.js http://127.0.0.1:PORT sk_test_...
// Prints one JSON line with what it saw; exits non-zero on any error.
'use strict';
const Stripe = require('stripe');

async function main() {
  const [base, key] = process.argv.slice(2);
  const url = new URL(base);
  const stripe = new Stripe(key, {
    host: url.hostname,
    port: Number(url.port),
    protocol: url.protocol.replace(':', ''),
    maxNetworkRetries: 0,
  });
  const customer = await stripe.customers.create({email: 'node@example.test', name: 'Node Client'});
  const pm = await stripe.paymentMethods.attach('pm_card_visa', {customer: customer.id});
  await stripe.customers.update(customer.id, {invoice_settings: {default_payment_method: pm.id}});
  await stripe.invoiceItems.create({customer: customer.id, amount: 2850, currency: 'usd',
                                    description: 'Consulting'});
  const draft = await stripe.invoices.create({customer: customer.id,
                                              pending_invoice_items_behavior: 'include'});
  const lines = await stripe.invoices.listLineItems(draft.id);
  const open = await stripe.invoices.finalizeInvoice(draft.id);
  const paid = await stripe.invoices.pay(open.id);
  const payments = await stripe.invoicePayments.list({invoice: paid.id});
  const intentId = payments.data[0].payment.payment_intent;
  const intent = await stripe.paymentIntents.retrieve(intentId, {expand: ['latest_charge']});
  const refund = await stripe.refunds.create({payment_intent: intentId, amount: 850});
  const charge = await stripe.charges.retrieve(intent.latest_charge.id);
  let missing = null;
  try {
    await stripe.customers.retrieve('cus_doesnotexist');
  } catch (err) {
    missing = {type: err.type, code: err.code, status: err.statusCode, param: err.param};
  }
  const events = await stripe.events.list({limit: 100});
  console.log(JSON.stringify({
    api_version: Stripe.API_VERSION,
    customer: customer.id,
    lines: lines.data.length,
    invoice: {id: paid.id, status: paid.status, amount_paid: paid.amount_paid,
              amount_paid_off_stripe: paid.amount_paid_off_stripe},
    payment_intent: {id: intent.id, status: intent.status},
    refund: {id: refund.id, status: refund.status, amount: refund.amount},
    charge: {amount_refunded: charge.amount_refunded, refunded: charge.refunded},
    missing,
    event_types: events.data.map((e) => e.type),
  }));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
