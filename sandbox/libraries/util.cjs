// Node's `util` for a bundled library: what jws and jwa take from it when they load and sign. (The npm
// `util` package would bring its own process and inspect machinery for these three functions.)
function inherits(ctor, superCtor) {
  Object.setPrototypeOf(ctor.prototype, superCtor.prototype);
  ctor.super_ = superCtor;
}

function format(pattern, ...args) {
  let i = 0;
  const text = String(pattern).replace(/%[sdj%]/g, (m) => {
    if (m === '%%') return '%';
    if (i >= args.length) return m;
    const v = args[i++];
    return m === '%d' ? String(Number(v)) : m === '%j' ? JSON.stringify(v) : String(v);
  });
  return [text, ...args.slice(i).map(String)].join(' ');
}

module.exports = { inherits, format, deprecate: (fn) => fn };
