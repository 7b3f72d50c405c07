// The forged OAuth callback, in headless Chromium: an attacker adds the carrier's app in a Zoom
// account of their own and keeps the callback URL Zoom sends them to, with its code, instead of
// following it; the signed-in admin of a customer is then made to open that URL. peerex must link
// nothing: it shows the admin a confirmation page naming the attacker's Zoom account, and the admin
// says no.
//
//   node e2e/forged-install.mjs ZOOM_URL PLATFORM_URL ATTACKER_EMAIL ATTACKER_PASSWORD ATTACKER_ACCOUNT PORTAL_EMAIL PORTAL_PASSWORD APP_NAME CUSTOMER
//
// Uses Debian's /usr/bin/chromium (PEEREX_CHROMIUM overrides). With PEEREX_E2E_SCREENSHOTS=DIR it
// saves screenshots there. Exits non-zero naming the failed check.

import { check, CheckFailed, launchChromium, step } from './lib.mjs';
import { join } from 'node:path';

const [zoom, peerex, attackerEmail, attackerPassword, attackerAccount, portalEmail, portalPassword, appName, customer] = process.argv.slice(2);
if (!customer) {
  console.error('usage: node e2e/forged-install.mjs ZOOM_URL PLATFORM_URL ATTACKER_EMAIL ATTACKER_PASSWORD ATTACKER_ACCOUNT PORTAL_EMAIL PORTAL_PASSWORD APP_NAME CUSTOMER');
  process.exit(2);
}
const shots = process.env.PEEREX_E2E_SCREENSHOTS;
const browser = await launchChromium();
// Two browsers that share nothing: the attacker's and the victim's.
const attacker = await (await browser.newContext()).newPage();
const victim = await (await browser.newContext()).newPage();
for (const p of [attacker, victim]) p.setDefaultTimeout(15_000);

async function shot(name) {
  if (shots) await victim.screenshot({ path: join(shots, `forged-install-${name}.png`), fullPage: true });
}

try {
  // The attacker, in Zoom: App Marketplace > Carrier Provider Exchange > the app > Add > Allow. Zoom's
  // answer to Allow redirects to peerex's callback with the code; the attacker keeps that URL.
  let forged = null;
  await attacker.route((url) => url.pathname === '/oauth/authorize', async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    const answer = await route.fetch({ maxRedirects: 0 });
    forged = answer.headers()['location'];
    await route.fulfill({ status: 200, contentType: 'text/plain', body: 'kept the callback URL' });
  });
  await attacker.goto(`${zoom}/signin`);
  await attacker.getByLabel('Email Address').fill(attackerEmail);
  await attacker.getByLabel('Password').fill(attackerPassword);
  await attacker.getByRole('button', { name: 'Sign In' }).click();
  await attacker.waitForURL('**/profile');
  await attacker.getByRole('navigation', { name: 'Main menu' }).getByRole('link', { name: 'App Marketplace' }).click();
  await attacker.getByRole('link', { name: 'Carrier Provider Exchange' }).click();
  await attacker.getByRole('link', { name: appName }).click();
  await attacker.getByRole('button', { name: 'Add' }).click();
  await attacker.getByRole('button', { name: 'Allow' }).click();
  await attacker.getByText('kept the callback URL').waitFor();
  check(forged && forged.startsWith(`${peerex}/zoom/oauth/callback?`) && forged.includes('code='), `the attacker kept a callback URL with a code: ${forged}`);
  step('attacker: authorized the app in their own Zoom account, kept the callback URL');

  // The victim: the customer's admin, signed in to the portal, opens the attacker's URL.
  await victim.goto(`${peerex}/portal/login`);
  await victim.getByLabel('E-mail').fill(portalEmail);
  await victim.getByLabel('Password').fill(portalPassword);
  await victim.getByRole('button', { name: 'Sign in' }).click();
  await victim.waitForURL(`${peerex}/portal`);
  await victim.goto(forged);
  await victim.waitForURL(`${peerex}/portal/install`);
  step('victim: opening the URL led to a confirmation page, not to a link');

  // The page names the attacker's Zoom account, as Zoom named it, and the customer it would link.
  const account = (await victim.locator('#zoom-account').textContent()).trim();
  const user = await victim.locator('#zoom-user').textContent();
  const heading = await victim.getByRole('heading', { level: 1 }).textContent();
  check(account === attackerAccount, `the page names the attacker's Zoom account ${attackerAccount}: ${account}`);
  check(user.includes(attackerEmail), `the page names who authorized it in Zoom (${attackerEmail}): ${user}`);
  check(heading.includes(customer), `the page names the customer it would be linked to: ${heading}`);
  await shot('confirmation');
  step(`the confirmation names Zoom account ${account}, added by ${user.trim()}`);

  // Without the admin's confirmation nothing is linked; the admin says no.
  await victim.goto(`${peerex}/portal`);
  check((await victim.textContent('#zoom-banner')).includes('Your Zoom account is not linked yet'), 'the portal says the account is not linked');
  await victim.goto(`${peerex}/portal/install`);
  await victim.getByRole('button', { name: 'Do not link it' }).click();
  await victim.waitForURL(`${peerex}/portal`);
  check((await victim.textContent('#zoom-banner')).includes('Your Zoom account is not linked yet'), 'still not linked after saying no');
  step('nothing linked; the admin declined');

  console.log('all checks passed');
} catch (e) {
  await shot('failure').catch(() => {});
  console.error(e instanceof CheckFailed ? `FAIL: ${e.message}` : e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
