export function tables() {
  return {};
}
