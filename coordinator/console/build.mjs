#!/usr/bin/env node
// Builds the web console into a directory of static files that the
// coordinator serves at /console/:
//
//   index.html     the page, referring to the assets below with ?v=<content hash>
//   app.js         src/ bundled and minified (preact + htm + uPlot + the app)
//   app.css        src/app.css
//   uplot.css      uPlot's own style sheet
//   licenses.txt   the licences of the bundled packages
//
// Usage: node build.mjs --out DIR [--node-modules DIR] [--dev] [--watch]
//
// The npm packages are never installed in the source tree: CMake runs
// `npm ci` in ${CMAKE_BINARY_DIR}/console-npm and passes its node_modules
// (--node-modules, or NODE_PATH); a developer can point at any directory
// where `npm ci` ran on this package.json (README.md).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(here, 'src');

function parseArgs(argv) {
  const args = { out: '', nodeModules: [], dev: false, watch: false };
  for (let i = 0; i < argv.length; ++i) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) fail(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--out') args.out = value();
    else if (arg.startsWith('--out=')) args.out = arg.slice(6);
    else if (arg === '--node-modules') args.nodeModules.push(value());
    else if (arg.startsWith('--node-modules=')) args.nodeModules.push(arg.slice(15));
    else if (arg === '--dev') args.dev = true;
    else if (arg === '--watch') args.watch = true;
    else if (arg === '--help' || arg === '-h') {
      console.log('usage: node build.mjs --out DIR [--node-modules DIR] [--dev] [--watch]');
      process.exit(0);
    } else fail(`unknown argument '${arg}'`);
  }
  if (!args.out) fail('--out DIR is required');
  args.out = path.resolve(args.out);
  return args;
}

function fail(message) {
  console.error(`build.mjs: ${message}`);
  process.exit(2);
}

// Where the packages are: --node-modules, then NODE_PATH, then the usual
// lookup from this directory (which finds nothing unless someone installed
// here by hand).
function nodeModuleDirs(args) {
  const fromEnv = (process.env.NODE_PATH || '').split(path.delimiter).filter(Boolean);
  return [...args.nodeModules, ...fromEnv].map((dir) => path.resolve(dir));
}

function loadEsbuild(dirs) {
  const require = createRequire(import.meta.url);
  try {
    return require(require.resolve('esbuild', { paths: [...dirs, here] }));
  } catch {
    fail(
      `cannot find esbuild in ${dirs.length ? dirs.join(', ') : '(no --node-modules or NODE_PATH)'}: ` +
        'run `npm ci` on package.json + package-lock.json in a directory outside the source tree ' +
        'and pass its node_modules with --node-modules',
    );
  }
}

function findInModules(dirs, relative) {
  for (const dir of [...dirs, path.join(here, 'node_modules')]) {
    const candidate = path.join(dir, relative);
    if (existsSync(candidate)) return candidate;
  }
  fail(`cannot find ${relative} in ${dirs.join(', ')}`);
}

const shortHash = (bytes) => createHash('sha256').update(bytes).digest('hex').slice(0, 12);

// Written beside the target and renamed, so that a coordinator serving the
// directory never sends half a file.
async function writeAtomically(file, bytes) {
  const temporary = `${file}.tmp-${process.pid}`;
  await writeFile(temporary, bytes);
  await rename(temporary, file);
}

async function licences(dirs) {
  const packages = ['preact', 'htm', 'uplot'];
  const parts = [];
  for (const name of packages) {
    const dir = path.dirname(findInModules(dirs, path.join(name, 'package.json')));
    const meta = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8'));
    const licenceFile = ['LICENSE', 'LICENSE.md', 'LICENSE.txt'].map((f) => path.join(dir, f)).find(existsSync);
    const text = licenceFile ? await readFile(licenceFile, 'utf8') : `${meta.license}\n`;
    parts.push(`${name} ${meta.version} (${meta.license})\n\n${text.trim()}\n`);
  }
  return `tide's web console bundles these packages:\n\n${parts.join('\n' + '-'.repeat(72) + '\n\n')}`;
}

async function build(esbuild, args, dirs) {
  const started = Date.now();
  const version = JSON.parse(await readFile(path.join(here, 'package.json'), 'utf8')).version;
  const common = {
    bundle: true,
    write: false,
    minify: !args.dev,
    sourcemap: args.dev ? 'inline' : false,
    nodePaths: dirs,
    logLevel: 'warning',
    legalComments: 'none', // the licences are in licenses.txt
    charset: 'utf8', // Korean and Chinese strings at 3 bytes a character, not 6-byte escapes
    absWorkingDir: here,
  };
  const [js, css] = await Promise.all([
    esbuild.build({
      ...common,
      entryPoints: [path.join(src, 'main.js')],
      outfile: path.join(args.out, 'app.js'),
      format: 'iife',
      target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
      define: {
        'process.env.NODE_ENV': JSON.stringify(args.dev ? 'development' : 'production'),
        TIDE_CONSOLE_VERSION: JSON.stringify(version),
      },
    }),
    esbuild.build({
      ...common,
      entryPoints: [path.join(src, 'app.css')],
      outfile: path.join(args.out, 'app.css'),
      target: ['chrome100', 'firefox100', 'safari15'],
    }),
  ]);
  const files = new Map();
  files.set('app.js', js.outputFiles[0].contents);
  files.set('app.css', css.outputFiles[0].contents);
  files.set('uplot.css', await readFile(findInModules(dirs, 'uplot/dist/uPlot.min.css')));
  files.set('licenses.txt', Buffer.from(await licences(dirs)));

  let page = await readFile(path.join(src, 'index.html'), 'utf8');
  for (const name of ['app.js', 'app.css', 'uplot.css']) {
    const placeholder = `%${name}%`;
    if (!page.includes(placeholder)) fail(`src/index.html lacks ${placeholder}`);
    page = page.replaceAll(placeholder, `/console/${name}?v=${shortHash(files.get(name))}`);
  }
  files.set('index.html', Buffer.from(page));

  await mkdir(args.out, { recursive: true });
  // index.html last: it names the new assets, which are then all in place.
  for (const [name, bytes] of [...files].sort(([a], [b]) => (a === 'index.html') - (b === 'index.html'))) {
    await writeAtomically(path.join(args.out, name), bytes);
  }

  const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
  let total = 0;
  let totalGz = 0;
  const lines = [];
  for (const name of ['index.html', 'app.js', 'app.css', 'uplot.css']) {
    const bytes = files.get(name);
    const gz = gzipSync(bytes).length;
    total += bytes.length;
    totalGz += gz;
    lines.push(`  ${name.padEnd(11)} ${kb(bytes.length).padStart(10)}  (${kb(gz)} gzipped)`);
  }
  console.log(`console: built ${args.out} in ${Date.now() - started} ms\n${lines.join('\n')}`);
  console.log(`  total       ${kb(total).padStart(10)}  (${kb(totalGz)} gzipped)`);
}

const args = parseArgs(process.argv.slice(2));
const dirs = nodeModuleDirs(args);
const esbuild = loadEsbuild(dirs);
try {
  await build(esbuild, args, dirs);
} catch (error) {
  // esbuild has printed the errors with file and line.
  if (!error.errors) console.error(error);
  process.exit(1);
}

if (args.watch) {
  // Enough for development: rebuild 100 ms after a file under src/ changes.
  const { watch } = await import('node:fs');
  let timer = null;
  watch(src, { recursive: true }, () => {
    clearTimeout(timer);
    timer = setTimeout(() => build(esbuild, args, dirs).catch((e) => e.errors || console.error(e)), 100);
  });
  console.log(`console: watching ${src}`);
}
