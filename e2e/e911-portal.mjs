// Emergency addresses in the customer portal, in headless Chromium: the customer's admin signs in and
// sees, in the list of their numbers, the emergency address they set in Zoom for one number and the
// flag on another that has none (the carrier requires one).
//
//   node e2e/e911-portal.mjs PLATFORM_URL PORTAL_EMAIL PORTAL_PASSWORD NUMBER_WITH NUMBER_WITHOUT ADDRESS
//
// Uses Debian's /usr/bin/chromium (PEEREX_CHROMIUM overrides); never downloads a browser. With
// PEEREX_E2E_SCREENSHOTS=DIR it saves screenshots there. Exits non-zero naming the failed check.

import { check, CheckFailed, launchChromium, step } from './lib.mjs';
import { join } from 'node:path';

const [platform, portalEmail, portalPassword, withAddress, without, address] = process.argv.slice(2);
if (!address) {
  console.error('usage: node e2e/e911-portal.mjs PLATFORM_URL PORTAL_EMAIL PORTAL_PASSWORD NUMBER_WITH NUMBER_WITHOUT ADDRESS');
  process.exit(2);
}
const shots = process.env.PEEREX_E2E_SCREENSHOTS;

const browser = await launchChromium();
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
page.setDefaultTimeout(15_000);

const row = (number) => page.locator('#numbers tbody tr', { hasText: number });

try {
  await page.goto(`${platform}/portal/login`);
  await page.getByLabel('E-mail').fill(portalEmail);
  await page.getByLabel('Password').fill(portalPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${platform}/portal`);
  step('the customer admin is signed in');

  check(await page.getByRole('columnheader', { name: 'Emergency address' }).isVisible(), 'the number list has an Emergency address column');
  const withText = await row(withAddress).locator('td.e911').textContent();
  check(withText.includes(address), `${withAddress} shows its address from Zoom (${withText.trim()})`);
  step(`${withAddress} shows the emergency address set in Zoom`);

  const flag = row(without).locator('td.e911 .flag');
  check(await flag.isVisible(), `${without} is flagged`);
  check((await flag.textContent()).includes('No emergency address: set one in Zoom'), 'the flag says what to do');
  check((await row(withAddress).locator('.flag').count()) === 0, `${withAddress} is not flagged`);
  if (shots) await page.screenshot({ path: join(shots, 'e911-portal.png'), fullPage: true });
  step(`${without} is flagged: no emergency address`);

  console.log('all checks passed');
} catch (e) {
  console.error(e instanceof CheckFailed ? `FAIL: ${e.message}` : e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
