'use strict';
// Preloaded (`node --require`) into the children of bench/streaming.ts: on exit, writes the
// process's peak RSS and CPU time to $STYLED_VQ_BENCH_USAGE. Adds nothing else to the process.
const file = process.env.STYLED_VQ_BENCH_USAGE;
if (file) {
  process.on('exit', () => {
    const u = process.resourceUsage();
    require('node:fs').writeFileSync(
      file,
      JSON.stringify({ max_rss_mb: u.maxRSS / 1024, user_s: u.userCPUTime / 1e6, system_s: u.systemCPUTime / 1e6 }),
    );
  });
}
