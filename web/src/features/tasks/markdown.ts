// Markdown for task descriptions and comments: `marked` (GFM) to HTML, then DOMPurify. Loaded
// lazily (import('./markdown')) by the Markdown component, so neither library is in the first load.
//
// Defence in depth: the marked side already drops unsafe link targets, turns remote images into
// links (the page's CSP allows images from 'self' and data: only, and remote images would leak
// readers' addresses) and renders `<@user-id>` mentions; DOMPurify then removes scripts, event
// handlers, styles and forms from anything else (raw HTML in the source), and every link opens in
// a new tab with `rel="noopener noreferrer"`.
import { Marked, type Tokens, type TokenizerAndRendererExtension } from 'marked';
import DOMPurify from 'dompurify';

/** How a mentioned user's id becomes a name (undefined: not known yet). */
export type MentionName = (userId: string) => string | undefined;

export type RenderOptions = { mentionName?: MentionName };

const MENTION = /^<@([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})>/;

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * A link target safe to put in `href`, or null: http(s), mailto and same-document or same-site
 * paths only (no `javascript:`, `data:`, `vbscript:`, nor schemes hidden behind whitespace or
 * control characters).
 */
export function safeHref(href: string | null | undefined): string | null {
  if (!href) return null;
  // Browsers ignore ASCII whitespace and control characters inside a scheme ("java\tscript:").
  // eslint-disable-next-line no-control-regex
  const compact = href.replace(/[\u0000-\u0020\u007f]/g, '');
  if (compact === '') return null;
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(compact);
  if (scheme) return ['http', 'https', 'mailto'].includes((scheme[1] ?? '').toLowerCase()) ? href.trim() : null;
  // No scheme: a relative reference ("/projects/…", "#part", "page"), but not "//host" (another site).
  return /^[\\/]{2}/.test(compact) ? null : href.trim();
}

/** An image source the page may load: a `data:` image (not SVG) only. */
export function safeImageSrc(src: string | null | undefined): string | null {
  if (!src) return null;
  return /^data:image\/(png|gif|jpe?g|webp|avif);/i.test(src.trim()) ? src.trim() : null;
}

const LINK_ATTRS = 'target="_blank" rel="noopener noreferrer"';

let currentMentionName: MentionName | undefined;

const mention: TokenizerAndRendererExtension = {
  name: 'mention',
  level: 'inline',
  start: (src: string) => {
    const i = src.indexOf('<@');
    return i < 0 ? undefined : i;
  },
  tokenizer(src: string) {
    const m = MENTION.exec(src);
    return m?.[1] ? { type: 'mention', raw: m[0], userId: m[1].toLowerCase() } : undefined;
  },
  renderer(token) {
    const id = (token as unknown as { userId: string }).userId;
    const name = currentMentionName?.(id);
    return `<span class="mention" data-user-id="${escapeHtml(id)}">@${escapeHtml(name ?? 'someone')}</span>`;
  },
};

const marked = new Marked({
  gfm: true,
  breaks: true,
  extensions: [mention],
  renderer: {
    // Headings go down three levels (the panel's own headings are h2 and h3) and keep their
    // Markdown level as a class for styling.
    heading(token: Tokens.Heading) {
      const level = Math.min(6, token.depth + 3);
      return `<h${level} class="md-h${token.depth}">${this.parser.parseInline(token.tokens)}</h${level}>\n`;
    },
    link(token: Tokens.Link) {
      const text = this.parser.parseInline(token.tokens);
      const href = safeHref(token.href);
      if (href === null) return `<span class="unsafe-link">${text}</span>`;
      const title = token.title ? ` title="${escapeHtml(token.title)}"` : '';
      return `<a href="${escapeHtml(href)}"${title} ${LINK_ATTRS}>${text}</a>`;
    },
    image(token: Tokens.Image) {
      const alt = token.text || token.href;
      const src = safeImageSrc(token.href);
      if (src) return `<img src="${escapeHtml(src)}" alt="${escapeHtml(token.text)}">`;
      const href = safeHref(token.href);
      // A remote image becomes a link to it: no request until the reader chooses to follow it.
      if (href) return `<a href="${escapeHtml(href)}" ${LINK_ATTRS}>${escapeHtml(`Image: ${alt}`)}</a>`;
      return escapeHtml(alt);
    },
  },
});

/**
 * Markdown to (not yet sanitised) HTML: GFM with line breaks, headings three levels down, safe
 * links that open in a new tab, remote images as links, mentions as `@Name`. Runs without a DOM (unit tested in Node).
 */
export function markdownToHtml(source: string, options: RenderOptions = {}): string {
  currentMentionName = options.mentionName;
  try {
    return marked.parse(source, { async: false }) as string;
  } finally {
    currentMentionName = undefined;
  }
}

type Purifier = ReturnType<typeof DOMPurify>;
let purifier: Purifier | null = null;

/** A DOMPurify of our own (hooks are per instance, so other features' settings cannot mix in). */
function getPurifier(): Purifier {
  if (purifier) return purifier;
  const p = DOMPurify(window);
  p.addHook('afterSanitizeAttributes', (node) => {
    const el = node as Element;
    if (el.tagName === 'A') {
      const href = safeHref(el.getAttribute('href'));
      if (href === null) el.removeAttribute('href');
      el.setAttribute('target', '_blank');
      el.setAttribute('rel', 'noopener noreferrer');
    } else if (el.tagName === 'IMG') {
      // An image the page may not load is replaced by its alt text (or nothing).
      if (safeImageSrc(el.getAttribute('src')) === null) {
        const alt = el.getAttribute('alt');
        el.replaceWith(el.ownerDocument.createTextNode(alt ? `[${alt}]` : ''));
      }
    }
  });
  purifier = p;
  return p;
}

const PURIFY_CONFIG = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'option', 'iframe', 'object', 'embed', 'svg', 'math', 'video', 'audio', 'source', 'picture'],
  // `style` would break the page's CSP (and could overlay the app); ids could clobber the page's.
  FORBID_ATTR: ['style', 'id', 'name', 'srcset', 'formaction', 'action'],
  // No data-* attributes but the mention's user id.
  ALLOW_DATA_ATTR: false,
  ADD_ATTR: ['target', 'data-user-id'],
};

/** Sanitises HTML for `dangerouslySetInnerHTML` (needs a browser DOM). */
export function sanitizeHtml(html: string): string {
  return getPurifier().sanitize(html, PURIFY_CONFIG) as string;
}

/** Markdown to sanitised HTML, ready for `dangerouslySetInnerHTML`. */
export function renderMarkdown(source: string, options: RenderOptions = {}): string {
  return sanitizeHtml(markdownToHtml(source, options));
}
