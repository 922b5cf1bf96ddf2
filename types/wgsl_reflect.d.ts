// The package's "main" is a CommonJS file under "type": "module", which Node cannot load;
// we import its ES module build directly and borrow the package's own typings.
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
