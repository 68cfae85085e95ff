// The browser suite: the whole web app against a running Trellis server, in Debian's Chromium
// via playwright-core. One person signs up, turns on 2FA, signs out and back in with a TOTP
// code, creates a project, adds tasks and moves cards with the mouse and the keyboard, while an
// administrator's browser sees the moves live; then a comment, an attachment and its download,
// search, the list view, project settings and members, and the admin's audit log. Screenshots of
// the main screens go to e2e/screenshots/; axe-core checks each of them, and any browser console
// error fails the run.
//
//   TRELLIS_URL=http://127.0.0.1:8080 ADMIN_EMAIL=… ADMIN_PASSWORD=… node e2e/app.mjs
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  BASE_URL,
  checkAccessibility,
  closeBrowser,
  currentStep30,
  STEP_TIMEOUT_MS,
  expectGone,
  expectVisible,
  waitForAnnouncement,
  fail,
  launch,
  log,
  shot,
  setOffline,
  step,
  totp,
  waitUntil,
  watchdog,
  watchedPage,
} from './lib.mjs';

const ADMIN_EMAIL = process.env.ADMIN_EMAIL;
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD;
if (!ADMIN_EMAIL || !ADMIN_PASSWORD) {
  console.error('ADMIN_EMAIL and ADMIN_PASSWORD must name an administrator of the server under test');
  process.exit(2);
}

const runId = randomBytes(5).toString('hex');
const email = `uma-${runId}@example.com`;
const name = 'Uma Tester';
const password = `${randomBytes(10).toString('hex')} quartz lantern meadow`;
const projectName = `Launch ${runId}`;
const renamed = `${projectName} (renamed)`;
const TASKS = ['Write the launch plan', 'Design the landing page', 'Book the venue'];
const DESKTOP = { width: 1280, height: 800 };

// A bound against hangs only: each step has its own (STEP_TIMEOUT_MS); a run takes about 20 s.
const timer = watchdog(600_000);

/** The column list of cards for a status on a board page. */
function column(page, label) {
  return page.getByRole('list', { name: label, exact: true });
}

/** The card of a task title inside `scope`. */
function card(scope, title) {
  return scope.locator('[data-task-id]').filter({ hasText: title });
}

async function openAccountMenu(page) {
  await page.getByRole('button', { name: /Account menu/ }).click();
}

async function signIn(page, who, pass) {
  await page.getByLabel('Email', { exact: true }).fill(who);
  await page.getByLabel('Password', { exact: true }).fill(pass);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/** Drags the card `title` from the column `fromName` onto the column `targetName` with real mouse
 * moves (the board's pointer sensor), releasing only once the board has announced it over there. */
async function drag(page, title, fromName, targetName) {
  const source = card(column(page, fromName), title);
  const target = column(page, targetName);
  const from = await source.boundingBox();
  const to = await target.boundingBox();
  if (!from || !to) await fail('cannot locate the drag source or target');
  await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
  await page.mouse.down();
  await page.mouse.move(from.x + from.width / 2 + 10, from.y + from.height / 2 + 10, { steps: 5 });
  await page.mouse.move(to.x + to.width / 2, to.y + Math.min(to.height - 10, 40), { steps: 20 });
  await waitForAnnouncement(page, `Task “${title}” is over ${targetName},`, `the dragged card over ${targetName}`);
  await page.mouse.up();
}

async function main() {
  log(`server ${BASE_URL}, user ${email}`);
  const browser = await launch();
  const uma = await browser.newContext({ viewport: DESKTOP });
  const page = await watchedPage(uma, 'uma');
  let secret = '';
  let enabledAtStep = 0;
  let projectUrl = '';

  await step('open the app signed out: the sign-in page', async () => {
    const response = await page.goto(`${BASE_URL}/`, { waitUntil: 'domcontentloaded' });
    if (!response?.ok()) await fail(`GET / answered ${response?.status() ?? 'nothing'}`);
    await expectVisible(page, page.getByRole('heading', { level: 1, name: 'Sign in to Trellis' }), 'sign-in page');
    await shot(page, '01-sign-in');
    await checkAccessibility(page, 'the sign-in page');
  });

  await step('sign up', async () => {
    await page.getByRole('link', { name: 'Create an account' }).click();
    await expectVisible(page, page.getByRole('heading', { level: 1, name: 'Create your account' }), 'register page');
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Name', { exact: true }).fill(name);
    await page.getByLabel('Password', { exact: true }).fill(password);
    const hint = await page.getByTestId('password-hint').innerText();
    if (!hint.startsWith('Long enough')) await fail(`the password hint should accept the password, says: ${hint}`);
    await shot(page, '02-register');
    await checkAccessibility(page, 'the register page');
    await page.getByRole('button', { name: 'Create account' }).click();
    await expectVisible(page, page.getByRole('heading', { level: 1, name: 'Projects' }), 'signed in after registering');
    await expectVisible(page, page.getByText('No projects yet'), 'a new person has no projects');
    await shot(page, '03-projects-empty');
    await checkAccessibility(page, 'the projects page');
  });

  await step('a reload keeps the session (refresh cookie)', async () => {
    await page.reload({ waitUntil: 'domcontentloaded' });
    await expectVisible(page, page.getByRole('heading', { level: 1, name: 'Projects' }), 'still signed in after a reload');
  });

  await step('two tabs opened at once both stay signed in (one refresh at a time)', async () => {
    const tabs = await Promise.all([watchedPage(uma, 'uma tab 2'), watchedPage(uma, 'uma tab 3')]);
    await Promise.all(tabs.map((t) => t.goto(`${BASE_URL}/projects`, { waitUntil: 'domcontentloaded' })));
    for (const t of tabs) {
      await expectVisible(t, t.getByRole('heading', { level: 1, name: 'Projects' }), 'signed in in another tab');
      await t.close();
    }
    await page.reload({ waitUntil: 'domcontentloaded' });
    await expectVisible(page, page.getByRole('heading', { level: 1, name: 'Projects' }), 'the first tab still signed in');
  });

  await step('enable two-factor authentication', async () => {
    await openAccountMenu(page);
    await page.getByRole('link', { name: 'Security' }).click();
    await expectVisible(page, page.getByRole('heading', { level: 1, name: 'Security' }), 'security page');
    await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
    // Enrolment needs the password again (step-up): a signed-in session alone is not enough.
    const proof = page.getByRole('dialog', { name: 'Set up two-factor authentication' });
    await proof.getByLabel('Password', { exact: true }).fill(password);
    await shot(page, '04-2fa-password');
    await checkAccessibility(page, 'the 2FA password prompt');
    await proof.getByRole('button', { name: 'Continue' }).click();
    await expectVisible(page, page.getByRole('img', { name: 'QR code for your authenticator app' }), 'the QR code');
    secret = (await page.getByTestId('totp-secret').innerText()).replace(/\s+/g, '');
    if (!/^[A-Z2-7]{32,}=*$/i.test(secret)) await fail(`the shown secret does not look like base32 of 160 bits: ${secret}`);
    await shot(page, '04-2fa-setup');
    await checkAccessibility(page, 'the 2FA setup');
    enabledAtStep = currentStep30();
    await page.getByLabel('Authentication code').fill(totp(secret, enabledAtStep));
    await page.getByRole('button', { name: 'Turn on two-factor authentication' }).click();
    const codes = page.getByRole('list', { name: 'Recovery codes' }).getByRole('listitem');
    await expectVisible(page, codes.first(), 'recovery codes');
    const count = await codes.count();
    if (count !== 10) await fail(`expected 10 recovery codes, saw ${count}`);
    await shot(page, '05-recovery-codes');
    await checkAccessibility(page, 'the recovery codes');
    await page.getByRole('button', { name: 'Done' }).click();
    await expectVisible(page, page.getByText('Two-factor authentication is on.'), '2FA shown as on');
  });

  await step('sign out, then sign in with password and TOTP', async () => {
    await openAccountMenu(page);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expectVisible(page, page.getByRole('heading', { level: 1, name: 'Sign in to Trellis' }), 'signed out');
    await signIn(page, email, password);
    await expectVisible(page, page.getByRole('heading', { level: 1, name: 'Two-factor authentication' }), 'the 2FA step');
    await shot(page, '06-2fa-step');
    await checkAccessibility(page, 'the 2FA sign-in step');
    // The step used to enable is spent; the next one is inside the server's window.
    await page.getByLabel('Authentication code').fill(totp(secret, Math.max(currentStep30(), enabledAtStep) + 1));
    await page.getByRole('button', { name: 'Verify' }).click();
    await expectVisible(page, page.getByRole('heading', { level: 1, name: 'Projects' }), 'signed in with TOTP');
  });

  await step('create a project', async () => {
    await page.getByLabel('Name', { exact: true }).fill(projectName);
    await page.getByLabel('Description', { exact: true }).fill('Everything for the launch.');
    await page.getByRole('button', { name: 'Create project' }).click();
    await expectVisible(page, page.getByRole('heading', { level: 1, name: projectName }), 'the new project board');
    projectUrl = new URL(page.url()).pathname;
    if (!/^\/projects\/[0-9a-f-]{36}$/.test(projectUrl)) await fail(`expected the board URL, got ${projectUrl}`);
  });

  await step('add tasks', async () => {
    for (const title of TASKS) {
      // The form stays open after an add, ready for the next title.
      if (!(await page.getByLabel('New task title').isVisible())) {
        await page.getByRole('button', { name: 'Add task to To do' }).click();
      }
      await page.getByLabel('New task title').fill(title);
      await page.getByRole('button', { name: 'Add', exact: true }).click();
      await expectVisible(page, card(column(page, 'To do'), title), `the card "${title}"`);
    }
    await shot(page, '07-board');
    await checkAccessibility(page, 'the board');
  });

  const admin = await browser.newContext({ viewport: DESKTOP });
  let adminName = '';
  const adminPage = await watchedPage(admin, 'admin');

  await step('a second browser (the administrator) opens the same board', async () => {
    await adminPage.goto(`${BASE_URL}/login`, { waitUntil: 'domcontentloaded' });
    await signIn(adminPage, ADMIN_EMAIL, ADMIN_PASSWORD);
    await expectVisible(adminPage, adminPage.getByRole('heading', { level: 1, name: 'Projects' }), 'admin signed in');
    adminName = (await adminPage.getByTestId('user-name').innerText()).trim();
    await adminPage.goto(`${BASE_URL}${projectUrl}`, { waitUntil: 'domcontentloaded' });
    await expectVisible(adminPage, card(column(adminPage, 'To do'), TASKS[1]), 'the admin sees the tasks');
  });

  await step('drag a card to Done; the other browser sees it move live', async () => {
    await drag(page, TASKS[1], 'To do', 'Done');
    await expectVisible(page, card(column(page, 'Done'), TASKS[1]), 'the card in Done after the drag');
    await expectVisible(adminPage, card(column(adminPage, 'Done'), TASKS[1]), 'the move, live in the second browser');
    await shot(adminPage, '08-board-live-second-browser');
    const after = await page.evaluate(() => performance.getEntriesByType('navigation').length);
    if (after !== 1) await fail('the board reloaded instead of updating live');
  });

  await step('move a card with the keyboard (Space, arrow, Space)', async () => {
    const link = card(column(page, 'To do'), TASKS[2]).getByRole('link', { name: TASKS[2] });
    await link.focus();
    await page.keyboard.press('Space');
    await waitForAnnouncement(page, `Picked up task “${TASKS[2]}”`, 'the card picked up with Space');
    await page.keyboard.press('ArrowRight');
    await waitForAnnouncement(page, `Task “${TASKS[2]}” is over In progress,`, 'the card over In progress');
    await page.keyboard.press('Space');
    await expectVisible(page, card(column(page, 'In progress'), TASKS[2]), 'the card in In progress after a keyboard move');
    await expectVisible(adminPage, card(column(adminPage, 'In progress'), TASKS[2]), 'the keyboard move, live');
  });

  await step('a new task appears live too', async () => {
    if (await page.getByLabel('New task title').isVisible()) await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('button', { name: 'Add task to In progress' }).click();
    await page.getByLabel('New task title').fill('Rehearse the demo');
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await expectVisible(adminPage, card(column(adminPage, 'In progress'), 'Rehearse the demo'), 'the new card, live');
  });

  await step('the second browser drops off the network, then catches up on reconnect', async () => {
    await setOffline(adminPage, true);
    await expectVisible(adminPage, adminPage.getByText('Reconnecting…'), 'the reconnecting indicator');
    await drag(page, 'Rehearse the demo', 'In progress', 'Done');
    await expectVisible(page, card(column(page, 'Done'), 'Rehearse the demo'), 'the card in Done');
    await setOffline(adminPage, false);
    await expectVisible(adminPage, card(column(adminPage, 'Done'), 'Rehearse the demo'), 'the missed move after reconnecting', 2 * STEP_TIMEOUT_MS);
  });

  await step('comment on a task and attach a file', async () => {
    await card(column(page, 'To do'), TASKS[0]).getByRole('link', { name: TASKS[0] }).or(
      card(column(page, 'To do'), TASKS[0]).getByRole('button', { name: TASKS[0] }),
    ).first().click();
    const details = page.getByRole('dialog', { name: TASKS[0] });
    await expectVisible(page, details, 'task details');
    await details.getByLabel('Comment').fill('First draft is in the shared folder.');
    await details.getByRole('button', { name: 'Post comment' }).click();
    await expectVisible(
      page,
      details.getByRole('list', { name: 'Comments' }).getByText('First draft is in the shared folder.'),
      'the comment',
    );
    await details.getByLabel('Attach a file').setInputFiles({
      name: 'launch-plan.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from('Launch plan\n1. Write\n2. Ship\n'),
    });
    await expectVisible(page, details.getByRole('list', { name: 'Attachments' }).getByText('launch-plan.txt'), 'the attachment');
    // Download it again: a presigned URL on the bucket (S3) or the bytes through the API (local).
    const download = details.getByRole('button', { name: 'Download launch-plan.txt' });
    await expectVisible(page, download, 'the download button (the file is available)');
    const [saved] = await Promise.all([page.waitForEvent('download'), download.click()]);
    const body = readFileSync(await saved.path(), 'utf8');
    if (body !== 'Launch plan\n1. Write\n2. Ship\n') await fail(`the downloaded file differs: ${JSON.stringify(body)}`);
    await shot(page, '09-task-details');
    await checkAccessibility(page, 'the task details');
    await page.keyboard.press('Escape');
    await expectVisible(page, page.getByRole('heading', { level: 1, name: projectName }), 'back on the board');
  });

  await step('search with the keyboard shortcut', async () => {
    await page.locator('body').click({ position: { x: 5, y: 200 } });
    await page.keyboard.press('/');
    const dialog = page.getByRole('dialog', { name: 'Search' });
    await expectVisible(page, dialog, 'the search dialog');
    await dialog.getByLabel('Search').fill('launch plan');
    const result = dialog.getByRole('list', { name: 'Search results' }).getByRole('link', { name: new RegExp(`^${TASKS[0]}`) });
    await expectVisible(page, result.first(), 'the task among the results');
    await shot(page, '10-search');
    await checkAccessibility(page, 'the search dialog');
    await result.first().click();
    await expectVisible(page, page.getByRole('dialog', { name: TASKS[0] }), 'the task opened from search');
    await page.keyboard.press('Escape');
  });

  await step('the list view', async () => {
    await page.getByRole('link', { name: 'List', exact: true }).click();
    const table = page.getByRole('table', { name: 'Tasks' });
    await expectVisible(page, table.getByText(TASKS[2]), 'the list view');
    await shot(page, '11-list');
    await checkAccessibility(page, 'the list view');
  });

  await step('project settings: rename (seen live), add a member, change the role, remove', async () => {
    await page.getByRole('link', { name: 'Settings', exact: true }).click();
    await expectVisible(page, page.getByRole('heading', { level: 1, name: 'Project settings' }), 'settings page');
    await page.getByLabel('Name', { exact: true }).fill(renamed);
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await expectVisible(adminPage, adminPage.getByRole('heading', { level: 1, name: renamed }), 'the new name, live on the other board');
    // The administrator shares no project with this user, so search does not find them (people
    // are found by name among co-members only); an exact address adds them, with the same answer
    // an unknown address would get.
    await page.getByLabel('Or add by email address').fill(ADMIN_EMAIL);
    await page.getByRole('button', { name: 'Add by email' }).click();
    await expectVisible(page, page.getByText(`If ${ADMIN_EMAIL.toLowerCase()} has a Trellis account`, { exact: false }), 'the answer that says nothing about the address');
    const members = page.getByRole('list', { name: 'Members' });
    await expectVisible(page, members.getByText(adminName, { exact: true }).first(), 'the new member');
    await page.getByLabel(`Role for ${adminName}`).selectOption('viewer');
    await expectVisible(page, page.getByText(`${adminName} is now viewer.`), 'the role change');
    await shot(page, '12-project-settings');
    await checkAccessibility(page, 'the project settings');
    await page.getByRole('button', { name: `Remove ${adminName}` }).click();
    await page.getByRole('button', { name: 'Yes, remove' }).click();
    await expectVisible(page, page.getByText(`Removed ${adminName}.`), 'the removal');
    await expectGone(page, members.getByText(adminName, { exact: true }), 'the removed member in the list');
    await page.getByRole('link', { name: 'Back to board' }).click();
    await expectVisible(page, page.getByRole('heading', { level: 1, name: renamed }), 'back on the renamed board');
  });

  await step('the administrator sees the audit entries and a sound chain', async () => {
    await adminPage.goto(`${BASE_URL}/admin/audit`, { waitUntil: 'domcontentloaded' });
    await expectVisible(adminPage, adminPage.getByRole('heading', { level: 1, name: 'Audit log' }), 'audit log page');
    const table = adminPage.getByRole('table', { name: 'Audit log' });
    await expectVisible(adminPage, table.getByText('auth.mfa_enabled').first(), 'the 2FA entry of the new person');
    await expectVisible(adminPage, table.getByText('task.created').first(), 'task entries');
    await adminPage.getByRole('button', { name: 'Verify chain' }).click();
    await expectVisible(adminPage, adminPage.getByText(/Chain intact/), 'chain verification');
    await shot(adminPage, '13-audit-log');
    await checkAccessibility(adminPage, 'the audit log');
    await adminPage.goto(`${BASE_URL}/admin`, { waitUntil: 'domcontentloaded' });
    await expectVisible(adminPage, adminPage.getByRole('heading', { level: 1, name: 'Admin dashboard' }), 'dashboard');
    await expectVisible(adminPage, adminPage.getByRole('img', { name: /Requests per second/ }).first(), 'the request chart');
    await adminPage.waitForTimeout(5_500);
    await shot(adminPage, '14-admin-dashboard');
    await checkAccessibility(adminPage, 'the admin dashboard');
  });

  await step('dark theme, applied at once', async () => {
    await openAccountMenu(page);
    await page.getByRole('link', { name: 'Profile and preferences' }).click();
    await expectVisible(page, page.getByRole('heading', { level: 1, name: 'Profile and preferences' }), 'profile page');
    await page.getByLabel('Theme').selectOption({ label: 'Dark' });
    await waitUntil(page, () => document.documentElement.classList.contains('dark'), 'the dark theme');
    await shot(page, '15-profile-dark');
    await checkAccessibility(page, 'the profile page, dark');
    await page.goto(`${BASE_URL}${projectUrl}`, { waitUntil: 'domcontentloaded' });
    await expectVisible(page, card(column(page, 'Done'), TASKS[1]), 'the board in dark');
    await waitUntil(page, () => document.documentElement.classList.contains('dark'), 'the dark theme after a reload');
    await shot(page, '16-board-dark');
    await checkAccessibility(page, 'the board, dark');
  });

  await step('on a phone', async () => {
    const phone = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
    const small = await watchedPage(phone, 'phone');
    await small.goto(`${BASE_URL}/login`, { waitUntil: 'domcontentloaded' });
    await signIn(small, ADMIN_EMAIL, ADMIN_PASSWORD);
    await expectVisible(small, small.getByRole('heading', { level: 1, name: 'Projects' }), 'projects on a phone');
    await small.goto(`${BASE_URL}${projectUrl}`, { waitUntil: 'domcontentloaded' });
    await expectVisible(small, small.getByRole('heading', { level: 1, name: renamed }), 'the board on a phone');
    const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 1) await fail(`the page is ${overflow}px wider than a phone screen`);
    await shot(small, '17-phone-board');
    await checkAccessibility(small, 'the board on a phone');
    await phone.close();
  });

  await step('new recovery codes and an email change, each after the password again', async () => {
    await page.goto(`${BASE_URL}/settings/security`, { waitUntil: 'domcontentloaded' });
    await expectVisible(page, page.getByRole('heading', { level: 1, name: 'Security' }), 'security page');
    await page.getByRole('button', { name: 'Get new recovery codes' }).click();
    const renew = page.getByRole('dialog', { name: 'Get new recovery codes?' });
    await renew.getByLabel('Password', { exact: true }).fill(password);
    await renew.getByRole('button', { name: 'Get new codes' }).click();
    await expectVisible(page, page.getByText('New recovery codes: the earlier ones no longer work.'), 'new recovery codes');
    const count = await page.getByRole('list', { name: 'Recovery codes' }).getByRole('listitem').count();
    if (count !== 10) await fail(`expected 10 new recovery codes, saw ${count}`);
    await shot(page, '18-new-recovery-codes');
    await page.getByRole('button', { name: 'Done' }).click();
    await page.goto(`${BASE_URL}/settings/profile`, { waitUntil: 'domcontentloaded' });
    await expectVisible(page, page.getByRole('heading', { level: 1, name: 'Profile and preferences' }), 'profile page');
    const newEmail = `uma-new-${runId}@example.com`;
    await page.getByLabel('Email', { exact: true }).fill(newEmail);
    await page.getByRole('button', { name: 'Save profile' }).click();
    await expectVisible(page, page.getByText('Enter your current password to change your email.'), 'the password is asked for');
    await page.getByLabel('Current password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Save profile' }).click();
    await expectVisible(page, page.getByText(`We sent a link to ${newEmail}.`, { exact: false }), 'the change waits for its link');
    const shown = await page.getByLabel('Email', { exact: true }).inputValue();
    if (shown !== email) await fail(`the email must stay ${email} until the link is opened, shows ${shown}`);
    await shot(page, '19-email-change-pending');
    await checkAccessibility(page, 'the pending email change');
  });

  await step('turn 2FA off, then delete the account (each after the password again)', async () => {
    await page.goto(`${BASE_URL}/settings/security`, { waitUntil: 'domcontentloaded' });
    await expectVisible(page, page.getByRole('heading', { level: 1, name: 'Security' }), 'security page');
    await page.getByRole('button', { name: 'Turn off two-factor authentication' }).click();
    const off = page.getByRole('dialog', { name: 'Turn off two-factor authentication?' });
    await off.getByLabel('Password', { exact: true }).fill(password);
    await off.getByRole('button', { name: 'Turn off', exact: true }).click();
    await expectVisible(page, page.getByRole('button', { name: 'Set up two-factor authentication' }), '2FA off');
    await page.getByRole('link', { name: 'Profile and preferences' }).first().click();
    // Downloading one's data asks for the password too (a stolen session alone gets nothing).
    await page.getByRole('button', { name: 'Download my data', exact: true }).click();
    const exportDialog = page.getByRole('dialog', { name: 'Download your data' });
    await exportDialog.getByLabel('Password', { exact: true }).fill(password);
    await shot(page, '20-export-password');
    await checkAccessibility(page, 'the export password dialog');
    const [exported] = await Promise.all([page.waitForEvent('download'), exportDialog.getByRole('button', { name: 'Download', exact: true }).click()]);
    const exportedText = readFileSync(await exported.path(), 'utf8');
    if (!exportedText.includes('trellis.export/1')) await fail('the downloaded export is not the export document');
    await expectVisible(page, page.getByText('Downloaded', { exact: false }), 'the export downloaded');
    await page.getByRole('button', { name: 'Delete account', exact: true }).click();
    const erase = page.getByRole('dialog', { name: 'Delete your account?' });
    await erase.getByLabel('Password', { exact: true }).fill(password);
    await erase.getByRole('button', { name: 'Delete my account permanently' }).click();
    await expectVisible(page, page.getByRole('heading', { level: 1, name: 'Sign in to Trellis' }), 'signed out after deletion');
    await expectVisible(page, page.getByText('Your account has been deleted.'), 'the deletion notice');
  });

  await step('the administrator deactivates someone, confirming with their own password', async () => {
    // A throwaway account, made through the API (the suite's user is gone by now).
    const stamp = randomBytes(4).toString('hex');
    const name = `Dora Deactivated ${stamp}`;
    const res = await fetch(`${BASE_URL}/auth/register`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: `dora-${stamp}@example.com`, password: `violet ${randomBytes(6).toString('hex')} zebra harbor`, name }),
    });
    if (!res.ok) await fail(`registering ${name}: ${res.status}`);
    await adminPage.goto(`${BASE_URL}/admin/users?q=${stamp}`, { waitUntil: 'domcontentloaded' });
    await expectVisible(adminPage, adminPage.getByRole('row', { name: new RegExp(name) }), 'the user in the list');
    await adminPage.getByLabel(`Status for ${name}`).selectOption('inactive');
    await adminPage.getByRole('button', { name: 'Deactivate', exact: true }).click();
    const proof = adminPage.getByRole('dialog', { name: `Change ${name}'s status to inactive?` });
    await proof.getByLabel('Password', { exact: true }).fill(ADMIN_PASSWORD);
    await shot(adminPage, '21-admin-change-password');
    await checkAccessibility(adminPage, 'the admin password confirmation');
    await proof.getByRole('button', { name: 'Confirm change' }).click();
    await expectVisible(adminPage, adminPage.getByText(`Changed ${name}'s status to inactive.`, { exact: true }).first(), 'the change, with the proof');
  });

  await closeBrowser();
  clearTimeout(timer);
  log('all steps passed');
}

main().catch((error) => fail(error instanceof Error ? error.message : String(error)));
