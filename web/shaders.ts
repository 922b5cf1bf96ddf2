// Bundles every WGSL file into the page (Vite inlines them as strings), so the built page needs
// no shader files next to it and works from any static host.
import { registerShaders } from '../src/gpu/shaders.ts';

const sources = import.meta.glob('../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;
registerShaders(sources);

export const shaderCount = Object.keys(sources).length;
