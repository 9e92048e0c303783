// Imported by `jco run --jco-import` before the command starts (scripts/jco-run.sh): jco 1.35
// runs a command with no preopened folder, so every file the command opens fails with ENOENT
// ("os error 44"). Grant the current folder, as `wasmtime run --dir .` does, and make it the
// command's working folder, so relative paths resolve there.
import { _setPreopens } from '@bytecodealliance/preview2-shim/filesystem';
import { _setCwd } from '@bytecodealliance/preview2-shim/cli';

_setPreopens({ '.': process.cwd() });
_setCwd('.');
