/**
 * xterm.js writes its generated CSS (cell size, theme colours) into `<style>` elements inside the
 * terminal. The UI's Content-Security-Policy (`style-src 'self'`, no 'unsafe-inline') refuses
 * inline style elements, so that CSS would never apply. Rather than weakening the policy for every
 * page, the player copies those rules into constructed stylesheets (CSSOM, like React's style
 * props, which the policy does not restrict) and keeps them in sync as xterm rewrites them.
 */
export function mirrorXtermStyles(container: HTMLElement): () => void {
  const sheets = new Map<HTMLStyleElement, CSSStyleSheet>();
  const sync = () => {
    for (const el of container.querySelectorAll('style')) {
      let sheet = sheets.get(el);
      if (!sheet) {
        sheet = new CSSStyleSheet();
        sheets.set(el, sheet);
        document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
      }
      sheet.replaceSync(el.textContent ?? '');
    }
  };
  const observer = new MutationObserver(sync);
  observer.observe(container, { subtree: true, childList: true, characterData: true });
  sync();
  return () => {
    observer.disconnect();
    const mine = new Set(sheets.values());
    document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => !mine.has(s));
  };
}
