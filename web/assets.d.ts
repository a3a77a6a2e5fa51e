// The virtual modules scripts/build-web.mjs bundles.
declare module "gptc-web:specs" {
  const specs: Record<string, string>;
  export default specs;
}
declare module "gptc-web:brown" {
  const docs: string[];
  export default docs;
}
declare module "*.css";
