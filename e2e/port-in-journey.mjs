// A port-in as an operator records and completes it, and as the customer's admin sees it, in headless
// Chromium through the operator portal, the customer portal and (simulated) Zoom:
//  operator → Port-ins → record (one bad number first: the form names its row) → the port-in page
//  shows it pushed to Zoom inactive → Zoom's Phone Numbers shows the numbers Pending → the customer's
//  portal lists the port-in waiting for its date → operator clicks Mark complete → Ported: active →
//  Zoom shows the numbers Normal → the customer's portal shows the port-in active.
//
//   node e2e/port-in-journey.mjs PLATFORM_URL SIM_URL OPERATOR_EMAIL OPERATOR_PASSWORD PORTAL_EMAIL PORTAL_PASSWORD ZOOM_EMAIL ZOOM_PASSWORD CUSTOMER_NAME NUMBER_A NUMBER_B
//
// The platform's job workers must be running. Uses Debian's /usr/bin/chromium (PEEREX_CHROMIUM
// overrides); never downloads a browser. With PEEREX_E2E_SCREENSHOTS=DIR it saves screenshots there.

import { check, CheckFailed, launchChromium, step } from './lib.mjs';
import { join } from 'node:path';

const [platform, sim, opEmail, opPassword, portalEmail, portalPassword, zoomEmail, zoomPassword, customer, a, b] = process.argv.slice(2);
if (!b) {
  console.error('usage: node e2e/port-in-journey.mjs PLATFORM_URL SIM_URL OPERATOR_EMAIL OPERATOR_PASSWORD PORTAL_EMAIL PORTAL_PASSWORD ZOOM_EMAIL ZOOM_PASSWORD CUSTOMER_NAME NUMBER_A NUMBER_B');
  process.exit(2);
}
const shots = process.env.PEEREX_E2E_SCREENSHOTS;

const browser = await launchChromium();
const operator = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const customerPage = await (await browser.newContext()).newPage();
for (const p of [operator, customerPage]) p.setDefaultTimeout(20_000);

async function shot(page, name) {
  if (shots) await page.screenshot({ path: join(shots, `port-in-${name}.png`), fullPage: true });
}

async function zoomStatus(page, number) {
  await page.goto(`${sim}/pbx/phone-numbers?tab=unassigned`);
  const row = page.locator('#numbers tr', { hasText: number });
  await row.first().waitFor();
  return await row.first().textContent();
}

try {
  // The operator signs in and opens Port-ins.
  await operator.goto(`${platform}/operator/port-ins`);
  await operator.fill('input[name="email"]', opEmail);
  await operator.fill('input[name="password"]', opPassword);
  await Promise.all([operator.waitForURL('**/operator/port-ins'), operator.click('button[type="submit"]')]);
  await operator.getByRole('heading', { name: 'Port-ins', level: 1 }).waitFor();
  step('the operator opens Port-ins');

  // A mistyped number: the form names its row and keeps what was typed.
  await operator.getByLabel('Customer').selectOption({ label: customer });
  await operator.getByLabel('Numbers (E.164), one per line').fill(`${a}\n555-01`);
  await operator.getByLabel('Losing carrier').fill('Old Tel');
  await operator.getByRole('button', { name: 'Record port-in' }).click();
  const alert = await operator.getByRole('alert').textContent();
  check(alert.includes('numbers[1]') && alert.includes('555-01'), `the refusal names the row: ${alert}`);
  check((await operator.getByLabel('Losing carrier').inputValue()) === 'Old Tel', 'what was typed is kept');
  step('a bad number is refused, naming its row');

  await operator.getByLabel('Numbers (E.164), one per line').fill(`${a}\n${b}`);
  await Promise.all([operator.waitForURL('**/operator/port-ins/*'), operator.getByRole('button', { name: 'Record port-in' }).click()]);
  await operator.locator('#port-state[data-state="pushed_inactive"]').waitFor();
  check((await operator.textContent('#port-in-numbers')).includes(a), `${a} is listed`);
  await shot(operator, 'pushed');
  step('recorded; the page follows it to "In Zoom, pending"');

  // Zoom's admin sees the numbers pending.
  await customerPage.goto(`${sim}/signin`);
  await customerPage.getByLabel('Email Address').fill(zoomEmail);
  await customerPage.getByLabel('Password').fill(zoomPassword);
  await customerPage.getByRole('button', { name: 'Sign In' }).click();
  await customerPage.waitForURL('**/profile');
  for (const n of [a, b]) check((await zoomStatus(customerPage, n)).includes('Pending'), `${n} is Pending in Zoom`);
  await shot(customerPage, 'zoom-pending');
  step('Zoom shows both numbers Pending');

  // The customer's portal lists the port-in waiting for its date.
  await customerPage.goto(`${platform}/portal/login`);
  await customerPage.getByLabel('E-mail').fill(portalEmail);
  await customerPage.getByLabel('Password').fill(portalPassword);
  await customerPage.getByRole('button', { name: 'Sign in' }).click();
  await customerPage.waitForURL(`${platform}/portal`);
  const waiting = await customerPage.textContent('#port-ins');
  check(waiting.includes('Old Tel') && waiting.includes('In Zoom, pending') && waiting.includes(a), `the customer sees the port-in pending: ${waiting}`);
  await shot(customerPage, 'portal-pending');
  step('the customer sees the port-in pending, with its numbers');

  // The operator marks it complete; the page follows it to active.
  await operator.getByRole('button', { name: 'Mark complete (activate in Zoom)' }).click();
  await operator.locator('#port-state[data-state="active"]').waitFor();
  check((await operator.textContent('#port-in-history')).includes('marked complete'), 'the history says who completed it');
  await shot(operator, 'active');
  step('marked complete; the page follows it to "Ported: active"');

  await customerPage.reload();
  const done = await customerPage.textContent('#port-ins');
  check(done.includes('Ported: active') && done.includes(`${a} (active)`), `the customer sees it active: ${done}`);
  check((await customerPage.textContent('#numbers')).includes(b), `${b} is among the customer's numbers`);
  step('the customer sees the port-in active and the numbers among its own');

  await customerPage.goto(`${sim}/signin`);
  await customerPage.getByLabel('Email Address').fill(zoomEmail);
  await customerPage.getByLabel('Password').fill(zoomPassword);
  await customerPage.getByRole('button', { name: 'Sign In' }).click();
  await customerPage.waitForURL('**/profile');
  for (const n of [a, b]) check((await zoomStatus(customerPage, n)).includes('Normal'), `${n} is Normal (active) in Zoom`);
  step('Zoom shows both numbers Normal');

  console.log('all checks passed');
  await browser.close();
} catch (e) {
  await shot(operator, 'failure').catch(() => {});
  console.error(e instanceof CheckFailed ? `FAIL: ${e.message}` : `FAIL: ${e.stack || e}`);
  console.error(`(at ${operator.url()} / ${customerPage.url()})`);
  await browser.close();
  process.exit(1);
}
