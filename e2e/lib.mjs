// What every browser journey shares: Debian's Chromium (never a downloaded browser), checks that
// name what failed, and one progress line per step.

import { chromium } from 'playwright-core';
import { existsSync } from 'node:fs';

export class CheckFailed extends Error {}

export function check(ok, message) {
  if (!ok) throw new CheckFailed(message);
}

export const step = (message) => console.log(`ok: ${message}`);

// Headless /usr/bin/chromium (PEEREX_CHROMIUM overrides); exits 1 with a message if it is missing.
export async function launchChromium() {
  const executablePath = process.env.PEEREX_CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    console.error(`FAIL: ${executablePath} is missing; run scripts/test, which installs Chromium`);
    process.exit(1);
  }
  return chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
