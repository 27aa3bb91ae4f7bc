// A node:test reporter that prints one plain closing line, "typescript: N passed, N failed",
// counting tests only (not the describe() suites around them). Runs next to the spec reporter.
export default async function* summaryReporter(source) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for await (const event of source) {
    const data = event.data ?? {};
    if (data.details?.type === 'suite') continue;
    if (event.type === 'test:pass') {
      if (data.skip !== undefined || data.todo !== undefined) skipped++;
      else passed++;
    } else if (event.type === 'test:fail') {
      failed++;
    }
  }
  yield `typescript: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`;
}
