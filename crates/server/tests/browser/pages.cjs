// The customer's pages in a real browser (Debian's chromium, driven by playwright-core), as the
// server's tests call it: `node pages.cjs reset BASE TOKEN PASSWORD`,
// `node pages.cjs report BASE TOKEN`, `node pages.cjs verify BASE TOKEN` (a confirmation link,
// approved) or `node pages.cjs enroll BASE TOKEN UNIX_TIME` (the server's clock, for the
// authenticator's code). Each page is also checked by axe-core, the accessibility
// engine, for WCAG 2.1 A and AA problems. Exits non-zero, with the reason on stderr, when the
// page does not behave as a customer expects. The browser is /usr/bin/chromium, or the one
// REGAIN_TEST_CHROMIUM names.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const { chromium } = require('playwright-core');

const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

function check(condition, what) {
  if (!condition) {
    throw new Error(what);
  }
}

// WCAG 2.1 A and AA rules over the page as it stands, in a page of its own: the pages forbid
// every script (Content-Security-Policy), which the customer's browser keeps to, so axe-core
// runs on a copy. A violation names the rule and the elements.
async function accessible(page, where) {
  const copy = await page.context().browser().newPage();
  try {
    await copy.setContent(await page.content());
    await copy.addScriptTag({ content: axeSource });
    await audit(copy, where);
  } finally {
    await copy.close();
  }
}

async function audit(page, where) {
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }),
  );
  const problems = result.violations.map(
    (v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`,
  );
  check(problems.length === 0, `${where}: accessibility problems:\n  ${problems.join('\n  ')}`);
}

// Clicks the button named `name` and waits for the answer to the form's POST to `url`.
async function submit(page, url, name) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url() === url && r.request().method() === 'POST'),
    page.getByRole('button', { name }).click(),
  ]);
  return response;
}

// SECURITY.md T10: opened, the link `/NAME/TOKEN` left the address bar for `/NAME`, its token
// in an HttpOnly cookie only that page gets. The page's address.
async function openLink(page, context, base, name, token) {
  const url = `${base}/${name}`;
  const opened = await page.goto(`${url}/${token}`);
  check(opened.status() === 200, `the ${name} page answered ${opened.status()}`);
  check(page.url() === url, `the token stayed in the address bar: ${page.url()}`);
  const held = await context.cookies();
  check(
    held.length === 1 && held[0].name === `regain_${name}` && held[0].httpOnly && held[0].path === `/${name}`,
    `the link's cookie is not as it should be: ${JSON.stringify(held.map((c) => ({ ...c, value: '…' })))}`,
  );
  return url;
}

async function reset(page, context, base, token, password) {
  const link = `${base}/reset/${token}`;
  const url = await openLink(page, context, base, 'reset', token);
  await page.getByRole('heading', { level: 1, name: /Choose a new password/ }).waitFor();
  await accessible(page, 'the reset page');
  // The fields are reached by their labels, and the keyboard reaches the first one first.
  const first = page.getByLabel('New password', { exact: true });
  const again = page.getByLabel('The same password again', { exact: true });
  await page.keyboard.press('Tab');
  check(await first.evaluate((e) => e === document.activeElement), 'Tab does not reach the new password first');
  check((await first.getAttribute('autocomplete')) === 'new-password', 'a password manager is not offered to fill it');

  // Too short: the browser itself stops it, nothing is sent.
  let posts = 0;
  page.on('request', (r) => {
    if (r.method() === 'POST') posts += 1;
  });
  await first.fill('short');
  await again.fill('short');
  await page.getByRole('button', { name: 'Set the new password' }).click();
  await page.waitForTimeout(300);
  check(posts === 0 && !(await first.evaluate((e) => e.validity.valid)), 'a short password was submitted');

  // A common one: refused by Regain with the rule it breaks, announced, and not echoed back.
  await first.fill('password1234');
  await again.fill('password1234');
  const refused = await submit(page, url, 'Set the new password');
  check(refused.status() === 422, `a common password answered ${refused.status()}`);
  const alert = page.getByRole('alert');
  check((await alert.innerText()).includes('most common'), `the refusal does not say why: ${await alert.innerText()}`);
  const described = (await first.getAttribute('aria-describedby')) || '';
  check(described.split(' ').includes('problem'), 'the field is not described by the refusal');
  check((await first.inputValue()) === '', 'the refused password is shown again');
  check(!(await page.content()).includes('password1234'), 'the refused password is in the page');
  await accessible(page, 'the reset page with a refusal');

  // The real one: changed, and no session comes with it (SECURITY.md P1).
  await first.fill(password);
  await again.fill(password);
  const done = await submit(page, url, 'Set the new password');
  check(done.status() === 200, `the new password answered ${done.status()}`);
  await page.getByRole('heading', { level: 1, name: 'Your password is changed' }).waitFor();
  await accessible(page, 'the confirmation');
  const cookies = await context.cookies();
  check(cookies.length === 0, `the reset signed the browser in: ${JSON.stringify(cookies)}`);

  // Used: the link is gone for good.
  const reused = await page.goto(link);
  check(reused.status() === 410, `a used link answered ${reused.status()}`);
}

async function report(page, context, base, token) {
  const url = await openLink(page, context, base, 'report', token);
  await page.getByRole('heading', { level: 1, name: 'Was this not you?' }).waitFor();
  await accessible(page, 'the report page');
  const answered = await submit(page, url, "This wasn't me");
  check(answered.status() === 200, `the report answered ${answered.status()}`);
  await page.getByRole('heading', { level: 1, name: /we are on it/ }).waitFor();
  await accessible(page, 'the report confirmation');
  check((await context.cookies()).length === 0, 'the used link left its cookie behind');
}

// RFC 6238 with the defaults (SHA-1, 30 s, 6 digits), as an authenticator app computes it from
// the key the page shows (RFC 4648 base32).
function totp(base32, unixTime) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of base32.replace(/[\s=]/g, '').toUpperCase()) {
    const v = alphabet.indexOf(c);
    check(v >= 0, `the key is not base32: ${base32}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixTime / 30)));
  const mac = crypto.createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 1000000;
  return String(code).padStart(6, '0');
}

async function enroll(page, context, base, token, unixTime) {
  const url = await openLink(page, context, base, 'enroll', token);
  await page.getByRole('heading', { level: 1, name: /Set up two-step sign-in/ }).waitFor();
  await accessible(page, 'the enroll page');
  await page.getByRole('button', { name: 'Start' }).click();
  await page.getByRole('heading', { level: 1, name: 'Scan this with your authenticator app' }).waitFor();
  check((await page.locator('svg').count()) === 1, 'no QR code');
  await accessible(page, 'the QR code page');
  const key = (await page.locator('code').innerText()).trim();
  const field = page.getByLabel(/The six-digit code the app shows/);
  check((await field.getAttribute('autocomplete')) === 'one-time-code', 'the code field is not a one-time code');

  // A wrong code: refused, announced, and the field says so.
  const right = totp(key, unixTime);
  await field.fill(right === '000000' ? '111111' : '000000');
  const wrong = await submit(page, url, 'Finish');
  check(wrong.status() === 422, `a wrong code answered ${wrong.status()}`);
  await page.getByRole('alert').waitFor();
  check((await page.getByRole('alert').innerText()).includes('not right'), 'a wrong code is not refused plainly');
  check((await field.getAttribute('aria-describedby')) === 'problem', 'the field is not described by the refusal');
  check((await page.locator('code').innerText()).trim() === key, 'the key changed after a wrong code');
  await accessible(page, 'the QR code page with a refusal');

  await field.fill(right);
  const done = await submit(page, url, 'Finish');
  check(done.status() === 200, `the right code answered ${done.status()}`);
  await page.getByRole('heading', { level: 1, name: 'Two-step sign-in is on again' }).waitFor();
  await accessible(page, 'the enroll confirmation');
  check((await context.cookies()).length === 0, 'the spent link left its cookie behind');
}

async function verify(page, context, base, token) {
  const link = `${base}/verify/${token}`;
  const url = await openLink(page, context, base, 'verify', token);
  await page.getByRole('heading', { level: 1, name: /support is verifying you/ }).waitFor();
  await accessible(page, 'the confirmation page');
  // Both answers are buttons a screen reader names; the page says what is asked and why.
  await page.getByRole('button', { name: "This wasn't me" }).waitFor();
  check((await page.locator('main').innerText()).includes('a password reset'), 'the page does not say what for');
  const answered = await submit(page, url, 'Approve: this is me');
  check(answered.status() === 200, `approving answered ${answered.status()}`);
  await page.getByRole('heading', { level: 1, name: 'Thank you' }).waitFor();
  await accessible(page, 'the confirmation answer');
  check((await context.cookies()).length === 0, 'the answered link left its cookie behind');
  const reused = await page.goto(link);
  check(reused.status() === 410, `a used confirmation link answered ${reused.status()}`);
}

async function main() {
  const [mode, base, token, extra] = process.argv.slice(2);
  check(
    ['reset', 'report', 'verify', 'enroll'].includes(mode) && base && token,
    'usage: pages.cjs reset|report|verify|enroll BASE TOKEN [PASSWORD|UNIX_TIME]',
  );
  const browser = await chromium.launch({
    executablePath: process.env.REGAIN_TEST_CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-background-networking'],
  });
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(10000);
    if (mode === 'reset') {
      await reset(page, context, base, token, extra);
    } else if (mode === 'verify') {
      await verify(page, context, base, token);
    } else if (mode === 'enroll') {
      await enroll(page, context, base, token, Number(extra));
    } else {
      await report(page, context, base, token);
    }
  } finally {
    await browser.close();
  }
  console.log(`${mode}: ok`);
}

main().catch((error) => {
  console.error(error.stack || String(error));
  process.exit(1);
});
