// Minimal NumPy .npy reader/writer (format versions 1-3, C order, little-endian) for the peers.
// Reads float32/float64/int32/int64/uint8 arrays into a Float32Array (converting), writes float32.
'use strict';
const fs = require('fs');

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);  // \x93NUMPY

function parseHeader(text, file) {
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(text);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr || !fortran || !shape) throw new Error(`${file}: malformed .npy header: ${text.trim()}`);
  if (fortran[1] === 'True') throw new Error(`${file}: Fortran-order arrays are not supported`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0).map((s) => {
    const v = Number(s);
    if (!Number.isInteger(v) || v < 0) throw new Error(`${file}: bad shape entry '${s}'`);
    return v;
  });
  return {descr: descr[1], shape: dims};
}

// Returns {shape: number[], data: Float32Array, descr: string}.
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  let headerLen; let offset;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8); offset = 10;
  } else if (major === 2 || major === 3) {
    headerLen = buf.readUInt32LE(8); offset = 12;
  } else {
    throw new Error(`${file}: unsupported .npy version ${major}`);
  }
  if (offset + headerLen > buf.length) throw new Error(`${file}: truncated .npy header`);
  const {descr, shape} = parseHeader(buf.toString('latin1', offset, offset + headerLen), file);
  const start = offset + headerLen;
  const count = shape.reduce((a, b) => a * b, 1);
  const kinds = {
    '<f4': [4, (o) => buf.readFloatLE(o)], '<f8': [8, (o) => buf.readDoubleLE(o)],
    '<i4': [4, (o) => buf.readInt32LE(o)], '<i8': [8, (o) => Number(buf.readBigInt64LE(o))],
    '|u1': [1, (o) => buf.readUInt8(o)], '|i1': [1, (o) => buf.readInt8(o)],
  };
  const kind = kinds[descr];
  if (!kind) throw new Error(`${file}: unsupported dtype '${descr}' (want <f4, <f8, <i4, <i8, |u1, |i1)`);
  const [size, get] = kind;
  if (start + count * size > buf.length) {
    throw new Error(`${file}: data truncated: shape [${shape}] needs ${count * size} bytes, file has ${buf.length - start}`);
  }
  let data;
  if (descr === '<f4' && (buf.byteOffset + start) % 4 === 0) {
    data = new Float32Array(buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + start + count * 4));
  } else {
    data = new Float32Array(count);
    for (let i = 0; i < count; ++i) data[i] = get(start + i * size);
  }
  return {shape, data, descr};
}

// Writes a float32 array of `shape` as .npy version 1.0 (header padded to a 64-byte boundary).
function writeNpy(file, shape, data) {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`writeNpy: shape [${shape}] does not match ${data.length} values`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  MAGIC.copy(pre, 0);
  pre[6] = 1; pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const f32 = Float32Array.from(data);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(f32.buffer)]));
}

module.exports = {readNpy, writeNpy};
