// Onboarding from the Zoom Marketplace, as the customer's admin does it, in headless Chromium, through
// the (simulated) Zoom pages and peerex's customer portal (issue 5, steps 2-6 and 8):
// Zoom sign-in → App Marketplace → Carrier Provider Exchange → the app → Add → Allow → peerex asks to
// sign in → peerex names the Zoom account and the admin confirms the link → the order's numbers are pushed, the order page updating itself → in Zoom the numbers are
// Unassigned; assign one → the portal shows it assigned → Manage → Added Apps → Remove → the portal
// says the numbers are suspended.
//
//   node e2e/zoom-onboarding.mjs ZOOM_URL PLATFORM_URL ZOOM_EMAIL ZOOM_PASSWORD PORTAL_EMAIL PORTAL_PASSWORD APP_NAME USER_EMAIL COUNT
//
// Uses Debian's /usr/bin/chromium (PEEREX_CHROMIUM overrides); never downloads a browser. With
// PEEREX_E2E_SCREENSHOTS=DIR it saves screenshots there. Exits non-zero naming the failed check.

import { check, CheckFailed, launchChromium, step } from './lib.mjs';
import { join } from 'node:path';

const [zoom, peerex, zoomEmail, zoomPassword, portalEmail, portalPassword, appName, userEmail, countArg] = process.argv.slice(2);
if (!countArg) {
  console.error('usage: node e2e/zoom-onboarding.mjs ZOOM_URL PLATFORM_URL ZOOM_EMAIL ZOOM_PASSWORD PORTAL_EMAIL PORTAL_PASSWORD APP_NAME USER_EMAIL COUNT');
  process.exit(2);
}
const count = Number(countArg);
const shots = process.env.PEEREX_E2E_SCREENSHOTS;

const browser = await launchChromium();
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
page.setDefaultTimeout(15_000);

async function shot(name) {
  if (shots) await page.screenshot({ path: join(shots, `onboarding-${name}.png`), fullPage: true });
}

/** Reloads `url` until `test(bodyText)` holds, for up to `seconds`. */
async function until(url, test, what, seconds = 20) {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    await page.goto(url);
    const text = await page.textContent('body');
    if (test(text)) return text;
    check(Date.now() < end, `${what} (waited ${seconds} s)`);
    await page.waitForTimeout(500);
  }
}

try {
  // 2. In Zoom: sign in, App Marketplace > Carrier Provider Exchange > the app > Add > Allow.
  await page.goto(`${zoom}/signin`);
  await page.getByLabel('Email Address').fill(zoomEmail);
  await page.getByLabel('Password').fill(zoomPassword);
  await page.getByRole('button', { name: 'Sign In' }).click();
  await page.waitForURL('**/profile');
  await page.getByRole('navigation', { name: 'Main menu' }).getByRole('link', { name: 'App Marketplace' }).click();
  await page.getByRole('link', { name: 'Carrier Provider Exchange' }).click();
  await page.getByRole('link', { name: appName }).click();
  await page.getByRole('button', { name: 'Add' }).click();
  await page.getByRole('button', { name: 'Allow' }).click();
  step('Zoom: App Marketplace > Carrier Provider Exchange > Add > Allow');

  // 3. peerex asks the admin to sign in, without the code in its URL, then carries on.
  await page.waitForURL(`${peerex}/portal/login`);
  check(!page.url().includes('code='), `the sign-in page's URL holds no code: ${page.url()}`);
  check((await page.textContent('main')).includes('Please sign in so we can apply your new numbers.'), 'peerex asks to sign in to apply the numbers');
  await shot('sign-in');
  await page.getByLabel('E-mail').fill(portalEmail);
  await page.getByLabel('Password').fill(portalPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();

  // peerex names the Zoom account the install is for; nothing is linked until the admin confirms.
  await page.waitForURL(`${peerex}/portal/install`);
  const account = (await page.locator('#zoom-account').textContent()).trim();
  check(account.length > 0, 'the confirmation names the Zoom account');
  check((await page.locator('#zoom-user').textContent()).includes(zoomEmail), `the confirmation names who added the app in Zoom (${zoomEmail})`);
  await shot('confirm');
  await page.getByRole('button', { name: 'Link this Zoom account' }).click();
  await page.waitForURL(`${peerex}/portal`);
  check((await page.textContent('#zoom-banner')).includes(`Linked to Zoom account ${account}`), 'the portal says the Zoom account is linked');
  step(`signed in and confirmed: Zoom account ${account} is linked`);

  // 4-5. The order's page shows each number's progress and refreshes itself until all are pushed.
  await page.locator('a[href^="/portal/orders/"]').first().click();
  await page.waitForURL('**/portal/orders/**');
  await page.waitForFunction((n) => document.querySelector('#pushed')?.textContent.trim() === String(n), count, { timeout: 30_000 });
  const rows = await page.locator('#progress tbody tr').allTextContents();
  check(rows.length === count && rows.every((r) => r.includes('Pushed: in your Zoom account')), `every number pushed: ${rows.join(' | ')}`);
  await shot('order-pushed');
  const number = (await page.locator('#progress tbody tr td.num').first().textContent()).trim();
  step(`the order page updated itself: ${count} numbers pushed`);

  // 6. In Zoom the numbers are Unassigned; assign one to a user; peerex learns it.
  await page.goto(`${zoom}/pbx/phone-numbers?tab=unassigned`);
  check((await page.textContent('#numbers')).includes(number), `${number} is under Unassigned in Zoom`);
  await page.getByRole('link', { name: number }).click();
  const option = await page.locator('#user option', { hasText: userEmail }).getAttribute('value');
  await page.getByLabel('Assign to').selectOption(option);
  await page.getByRole('button', { name: 'Assign', exact: true }).click();
  await page.getByRole('status').waitFor();
  step(`Zoom: assigned ${number} to ${userEmail}`);
  await until(`${peerex}/portal`, (t) => t.includes('Assigned to a user'), 'the portal shows the number assigned in Zoom');
  await shot('assigned');
  step('the portal shows it assigned');

  // 8. Manage > Added Apps > Remove: the portal says what happened and what to do.
  await page.goto(`${zoom}/marketplace`);
  await page.getByRole('link', { name: 'Manage' }).click();
  await page.locator('#added-apps li', { hasText: appName }).getByRole('button', { name: 'Remove' }).click();
  step('Zoom: Manage > Added Apps > Remove');
  const text = await until(`${peerex}/portal`, (t) => t.includes('The app was removed from your Zoom account'), 'the portal says the app was removed');
  check(text.includes('Your numbers are suspended') && text.includes('add the app again'), 'the banner says what it means and what to do');
  check((await page.locator('#numbers .state-suspended').count()) === count, 'the numbers are suspended');
  await shot('removed');
  step('the portal says the numbers are suspended and how to restore them');

  console.log('all checks passed');
} catch (e) {
  await shot('failure').catch(() => {});
  console.error(e instanceof CheckFailed ? `FAIL: ${e.message}` : e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
