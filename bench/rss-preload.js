'use strict';
// Preloaded (`node --require`) into the cold-start child of `npm run bench`: on exit, writes
// the process's peak RSS to $STYLED_VQ_BENCH_RSS. Adds nothing else to the process.
const file = process.env.STYLED_VQ_BENCH_RSS;
if (file) {
  process.on('exit', () => {
    require('node:fs').writeFileSync(file, JSON.stringify({ max_rss_mb: process.resourceUsage().maxRSS / 1024 }));
  });
}
