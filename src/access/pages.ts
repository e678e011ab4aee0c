import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';

/**
 * The few pages the proxy itself shows a browser (sign-in is the portal's
 * `/login`): a workspace that is not running (its state, a start button,
 * live progress), and errors. Self-contained (no external assets), with a strict CSP and one nonce'd script.
 */

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const STYLE = `
:root{color-scheme:light dark;--fg:#1d2330;--muted:#5b6475;--bg:#f5f6f8;--card:#fff;--accent:#2457c5;--bad:#b42318;--line:#dde1e8}
@media (prefers-color-scheme:dark){:root{--fg:#e8ebf1;--muted:#a3abbb;--bg:#12151b;--card:#1b1f27;--accent:#7aa2ff;--bad:#ff8a80;--line:#2c3240}}
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg);display:grid;place-items:center;min-height:100vh;padding:1rem}
main{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:2rem;width:100%;max-width:28rem;box-shadow:0 1px 3px rgb(0 0 0 / .08)}
h1{font-size:1.35rem;margin:0 0 .25rem}p{margin:.5rem 0;color:var(--muted)}.brand{font-weight:700;letter-spacing:.02em;color:var(--accent);margin-bottom:1rem}
label{display:block;margin:.75rem 0 .25rem;font-weight:600}input{width:100%;padding:.6rem .7rem;border:1px solid var(--line);border-radius:8px;font:inherit;background:var(--bg);color:var(--fg)}
button{margin-top:1.25rem;width:100%;padding:.65rem;border:0;border-radius:8px;background:var(--accent);color:#fff;font:inherit;font-weight:600;cursor:pointer}button:disabled{opacity:.6;cursor:wait}
button:focus-visible,input:focus-visible,a:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.phase{display:inline-block;padding:.1rem .6rem;border-radius:999px;border:1px solid var(--line);font-weight:600}.error{color:var(--bad)}code{font-size:.95em}a{color:var(--accent)}`;

function page(res: ServerResponse, status: number, title: string, body: string, script = ''): void {
  const nonce = randomBytes(12).toString('base64');
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)} · Atrium</title><style>${STYLE}</style></head><body><main>${body}</main>${script ? `<script nonce="${nonce}">${script}</script>` : ''}</body></html>`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': `default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-${nonce}'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'same-origin',
  });
  res.end(html);
}

export interface WorkspaceState {
  team: string;
  name: string;
  phase: string;
  desired: string;
  reason: string;
  /** whether the viewer may start it */
  canStart: boolean;
}

/** A workspace that is not running: its phase, a start button, and progress from the team's event stream until it runs. */
export function statePage(res: ServerResponse, ws: WorkspaceState): void {
  const id = `${ws.team}/${ws.name}`;
  const api = `/api/v1/teams/${ws.team}/workspaces/${ws.name}`;
  const starting = ws.desired === 'running';
  page(
    res,
    503,
    id,
    `<div class="brand">Atrium</div><h1>${escapeHtml(id)}</h1>
<p>State: <span id="ph" class="phase">${escapeHtml(ws.phase)}</span></p>
<p id="msg" aria-live="polite">${starting ? 'Starting; this page opens the workspace when it is ready.' : escapeHtml(ws.reason || 'This workspace is not running.')}</p>
<p id="e" class="error" role="alert"></p>
${ws.canStart && !starting ? '<button id="start" type="button">Start workspace</button>' : ''}`,
    `const ph=document.getElementById('ph'),msg=document.getElementById('msg'),e=document.getElementById('e'),b=document.getElementById('start');
function watch(){const es=new EventSource(${JSON.stringify(`${api}/events`)});
es.addEventListener('phase',(m)=>{const d=JSON.parse(m.data);ph.textContent=d.data.phase;msg.textContent=d.message;if(d.data.phase==='running'){es.close();location.reload()}
if(d.data.phase==='failed'){es.close();e.textContent=d.data.reason||d.message}});
es.addEventListener('step',(m)=>{msg.textContent=JSON.parse(m.data).message});}
if(b)b.addEventListener('click',async()=>{b.disabled=true;e.textContent='';const r=await fetch(${JSON.stringify(`${api}/start`)},{method:'POST'});
if(r.ok){msg.textContent='Starting…';watch()}else{const j=await r.json().catch(()=>null);e.textContent=j&&j.error?j.error.message:'Could not start ('+r.status+')';b.disabled=false}});
${starting ? 'watch();' : ''}`,
  );
}

export function messagePage(res: ServerResponse, status: number, title: string, message: string): void {
  page(res, status, title, `<div class="brand">Atrium</div><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>`);
}
