// The Zoom simulator's seed journeys, as a customer's Zoom admin walks them, in headless Chromium:
//  1. sign in to Zoom → App Marketplace → Carrier Provider Exchange → the carrier's app → Add → Allow →
//     redirected to the app's redirect URI with a code and no state (a Marketplace install);
//  2. Phone Numbers → Unassigned → a number → assign it to a user → Assigned → the number → Unbind →
//     Return to Carrier (the number shows Returned);
//  3. App Marketplace → Manage → Added Apps → the app → Remove (on the app's own page, as the carrier's
//     guide says).
//
//   node e2e/zoom-sim-journey.mjs SIM_URL EMAIL PASSWORD APP_NAME REDIRECT_URI NUMBER USER_EMAIL
//
// Uses Debian's /usr/bin/chromium (PEEREX_CHROMIUM overrides); never downloads a browser. With
// PEEREX_E2E_SCREENSHOTS=DIR it saves screenshots of the key pages there. Prints the code it received
// as `code: ...` and exits non-zero with a message naming the failed check.

import { check, CheckFailed, launchChromium, step } from './lib.mjs';
import { join } from 'node:path';

const [base, email, password, appName, redirectUri, number, userEmail] = process.argv.slice(2);
if (!userEmail) {
  console.error('usage: node e2e/zoom-sim-journey.mjs SIM_URL EMAIL PASSWORD APP_NAME REDIRECT_URI NUMBER USER_EMAIL');
  process.exit(2);
}
const shots = process.env.PEEREX_E2E_SCREENSHOTS;

const browser = await launchChromium();
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
page.setDefaultTimeout(15_000);

async function shot(name) {
  if (shots) await page.screenshot({ path: join(shots, `zoom-${name}.png`), fullPage: true });
}

async function numbersTab(tab) {
  await page.getByRole('navigation', { name: 'Main menu' }).getByRole('link', { name: 'Phone Numbers', exact: true }).click();
  await page.getByRole('tab', { name: tab, exact: true }).click();
  await page.waitForURL(`**/pbx/phone-numbers?tab=${tab.toLowerCase()}`);
  check((await page.getByRole('tab', { name: tab, exact: true }).getAttribute('aria-selected')) === 'true', `the ${tab} tab is selected`);
}

try {
  // Sign in to Zoom.
  await page.goto(`${base}/signin`);
  await page.getByLabel('Email Address').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign In' }).click();
  await page.waitForURL('**/profile');
  check((await page.textContent('main')).includes(email), 'the profile shows who signed in');
  step('signed in to Zoom');

  // Advanced > App Marketplace > Carrier Provider Exchange > the app.
  await page.getByRole('navigation', { name: 'Main menu' }).getByRole('link', { name: 'App Marketplace' }).click();
  await page.getByRole('link', { name: 'Carrier Provider Exchange' }).click();
  await page.getByRole('link', { name: appName }).click();
  await page.getByRole('heading', { name: appName, level: 1 }).waitFor();
  check((await page.textContent('#scopes')).includes('number_management_numbers:write:admin'), 'the app page lists its scopes');
  await shot('app');
  step('found the app under Carrier Provider Exchange');

  // Add, then Allow: the browser lands on the app's redirect URI with a code and no state.
  await page.getByRole('button', { name: 'Add' }).click();
  await page.getByRole('button', { name: 'Allow' }).waitFor();
  check((await page.textContent('#scopes')).includes('number_management_numbers:read:admin'), 'the consent page lists the scopes');
  await shot('consent');
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL((url) => url.href.startsWith(redirectUri));
  const landed = new URL(page.url());
  const code = landed.searchParams.get('code');
  check(code, `the redirect carries a code: ${landed.href}`);
  check(!landed.searchParams.has('state'), 'a Marketplace install sends no state');
  check((await page.textContent('body')).includes('callback received'), 'the app received the redirect');
  console.log(`code: ${code}`);
  step('Add → Allow redirected to the app with a code');

  // Phone System Management > Phone Numbers > Unassigned > the number > assign it to a user.
  await page.goto(`${base}/profile`);
  await numbersTab('Unassigned');
  check((await page.textContent('#numbers')).includes(number), `${number} is listed as unassigned`);
  await page.getByRole('link', { name: number }).click();
  await page.getByRole('heading', { name: number, level: 1 }).waitFor();
  await shot('number-unassigned');
  const option = await page.locator('#user option', { hasText: userEmail }).getAttribute('value');
  await page.getByLabel('Assign to').selectOption(option);
  await page.getByRole('button', { name: 'Assign', exact: true }).click();
  await page.getByRole('status').waitFor();
  check((await page.textContent('[role=status]')).includes('is assigned to'), 'the page says the number is assigned');
  step(`assigned ${number} to ${userEmail}`);

  // Assigned tab lists it; Unbind from its page.
  await numbersTab('Assigned');
  check((await page.textContent('#numbers')).includes(number), `${number} is listed as assigned`);
  await page.getByRole('link', { name: number }).click();
  await shot('number-assigned');
  await page.getByRole('button', { name: 'Unbind' }).click();
  await page.getByRole('status').waitFor();
  check((await page.textContent('[role=status]')).includes('is no longer assigned'), 'the page says the number was unbound');
  await numbersTab('Unassigned');
  check((await page.textContent('#numbers')).includes(number), `${number} is back under Unassigned`);
  step('Assigned → Unbind → back to Unassigned');

  // The number's page > Return to Carrier: the customer gives it back; it shows Returned.
  await page.getByRole('link', { name: number }).click();
  await page.getByRole('heading', { name: number, level: 1 }).waitFor();
  await page.getByRole('button', { name: 'Return to Carrier' }).click();
  await page.getByRole('status').waitFor();
  check((await page.textContent('[role=status]')).includes('has been returned to'), 'the page says the number was returned');
  check((await page.textContent('#pool-status')).trim() === 'Returned', 'the number shows Returned');
  check((await page.getByRole('button', { name: 'Assign', exact: true }).count()) === 0, 'a returned number cannot be assigned');
  await shot('number-returned');
  await numbersTab('Unassigned');
  check((await page.locator('#numbers tr', { hasText: number }).textContent()).includes('Returned'), `${number} is listed as Returned`);
  step('the number → Return to Carrier → Returned');

  // Manage > Added Apps > the app > Remove.
  await page.getByRole('navigation', { name: 'Main menu' }).getByRole('link', { name: 'App Marketplace' }).click();
  await page.getByRole('link', { name: 'Manage', exact: true }).click();
  await page.getByRole('heading', { name: 'Added Apps' }).waitFor();
  await page.locator('#added-apps').getByRole('link', { name: appName }).click();
  await page.getByRole('heading', { name: appName, level: 1 }).waitFor();
  check((await page.textContent('main')).includes('This app is added to your account'), 'the app page says the app is added');
  await shot('app-added');
  await page.getByRole('button', { name: 'Remove' }).click();
  await page.getByRole('status').waitFor();
  check((await page.textContent('[role=status]')).includes('has been removed'), 'the page says the app was removed');
  check(!(await page.textContent('main')).includes('This app is added to your account'), 'the app is no longer added');
  await page.getByRole('navigation', { name: 'Main menu' }).getByRole('link', { name: 'App Marketplace' }).click();
  await page.getByRole('link', { name: 'Manage', exact: true }).click();
  check((await page.textContent('main')).includes('No apps have been added'), 'Added Apps is empty');
  step('Manage → Added Apps → the app → Remove');

  console.log('all checks passed');
  await browser.close();
} catch (e) {
  await shot('failure').catch(() => {});
  console.error(e instanceof CheckFailed ? `FAIL: ${e.message}` : `FAIL: ${e.stack || e}`);
  console.error(`(at ${page.url()})`);
  await browser.close();
  process.exit(1);
}
