import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';

/** One resource binding of a compute entry point, as declared in WGSL. */
export interface BindingInfo {
  name: string;
  binding: number;
  kind: 'uniform' | 'read-only-storage' | 'storage';
}

export interface EntryInfo {
  bindings: BindingInfo[];
  /** Names of all `override` constants in the module. */
  overrides: string[];
}

/**
 * Reads the bindings of a compute entry point from WGSL, so bind group layouts come from the
 * shader itself and a TS/WGSL mismatch is caught by name, not by a validation error later.
 */
export function reflectEntry(code: string, entryPoint: string, shaderName: string): EntryInfo {
  const r = new WgslReflect(code);
  const entry = r.entry.compute.find((e) => e.name === entryPoint);
  if (!entry) {
    const names = r.entry.compute.map((e) => e.name).join(', ') || 'none';
    throw new Error(`${shaderName}: no @compute entry point '${entryPoint}' (found: ${names})`);
  }
  const bindings: BindingInfo[] = [];
  for (const v of entry.resources) {
    if (v.group !== 0) throw new Error(`${shaderName}: binding '${v.name}' uses @group(${v.group}); kernels use group 0 only`);
    // ResourceType: 0 = uniform, 1 = storage (wgsl_reflect's enum)
    if (v.resourceType === 0) bindings.push({ name: v.name, binding: v.binding, kind: 'uniform' });
    else if (v.resourceType === 1) {
      bindings.push({ name: v.name, binding: v.binding, kind: v.access === 'read' ? 'read-only-storage' : 'storage' });
    } else throw new Error(`${shaderName}: binding '${v.name}' is not a buffer; kernels bind buffers only`);
  }
  bindings.sort((a, b) => a.binding - b.binding);
  return { bindings, overrides: r.overrides.map((o) => o.name) };
}
