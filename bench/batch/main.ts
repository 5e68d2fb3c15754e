/**
 * The batch benchmark on its own (`npm run bench` runs it as one of its sections):
 *
 *   npm run build && npx tsc -p bench/tsconfig.json && node dist/bench/bench/batch/main.js [--quick] [--model DIR]
 *       [--photos 512] [--threads N] [--batch-size 32] [--concurrency N] [--rss 1000,10000]
 *       [--photos-from DIR] [--keep]
 *
 * Prints the figures as one JSON object on stdout; progress on stderr.
 */
import yargs from 'yargs';
import { PHOTOS_FROM, runBatchBench } from './index';

async function main(): Promise<void> {
  const a = await yargs(process.argv.slice(2))
    .options({
      quick: { type: 'boolean', default: false },
      model: { type: 'string', describe: 'Model package (default: the shipped default)' },
      photos: { type: 'number', describe: 'Photos to generate (default 512; quick 128)' },
      'photos-from': { type: 'string', default: PHOTOS_FROM, describe: 'Folder with real JPEGs to crop from' },
      threads: { type: 'number' },
      'batch-size': { type: 'number' },
      concurrency: { type: 'number' },
      rss: {
        type: 'string',
        describe: 'Folder sizes for peak-RSS runs, comma-separated (default 1000,10000; 0: none)',
      },
      seed: { type: 'number', default: 1 },
      keep: { type: 'boolean', default: false },
    })
    .strict()
    .parseAsync();
  const figures = await runBatchBench({
    quick: a.quick,
    model: a.model,
    photos: a.photos,
    photosFrom: a['photos-from'],
    threads: a.threads,
    batchSize: a['batch-size'],
    concurrency: a.concurrency,
    rssCounts: a.rss
      ?.split(',')
      .map(Number)
      .filter((n) => n > 0),
    seed: a.seed,
    keep: a.keep,
  });
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
}

main().catch((err) => {
  process.stderr.write(`bench batch: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
