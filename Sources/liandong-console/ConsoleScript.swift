extension ConsoleAssets {
    /// The page's script. The queue is never re-sorted under the cursor: live changes update rows in
    /// place, new tasks are added at the end and announced ("N new"), and only that button (or a
    /// reconnect, which reloads the snapshot) sorts again. The note being typed lives outside
    /// everything that is redrawn.
    static let script = #"""
        'use strict';
        const $ = (id) => document.getElementById(id);
        const TERMINAL = new Set(['resolved', 'false_alarm', 'left your scope']);
        const TIER = { village: '村 village', township: '乡镇 township', county: '县 county' };
        const SOURCE = { camera: '视频 camera', report: '上报 report', both: '联动 both' };
        let me = null, skew = 0, selected = null, fresh = 0, mapData = null, connectedOnce = false, stripTimer = null;
        let order = [];            // task ids in display order
        const tasks = new Map();   // id -> task

        function csrf() { const m = document.cookie.match(/(?:^|; )csrf=([^;]*)/); return m ? decodeURIComponent(m[1]) : ''; }
        async function api(url, options) {
          const r = await fetch(url, Object.assign({ credentials: 'same-origin', cache: 'no-store' }, options || {}));
          if (r.status === 401) { location.href = '/login'; throw new Error('log in first'); }
          const body = await r.json().catch(() => ({}));
          if (!r.ok) throw new Error(body.error || ('HTTP ' + r.status));
          return body;
        }
        const now = () => Date.now() / 1000 + skew;
        const deadline = (t) => t.state === 'open' ? t.respond_by : t.resolve_by;
        function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = text; if (cls) e.className = cls; return e; }
        function clock(s) {
          const sign = s < 0 ? '-' : ''; s = Math.abs(Math.round(s));
          const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), x = s % 60;
          return sign + (h ? h + ':' + String(m).padStart(2, '0') : m) + ':' + String(x).padStart(2, '0');
        }
        function when(epoch) { return new Date(epoch * 1000).toLocaleString('zh-CN', { hour12: false, timeZone: 'Asia/Shanghai' }); }
        function urgency(t) {
          if (TERMINAL.has(t.state)) return '';
          const d = deadline(t), left = d - now();
          if (t.overdue || left <= 0) return 'late';
          if (left < 0.25 * (d - t.handed_at)) return 'soon';
          return '';
        }

        // A feed message (liandong.task.v1) as the snapshot's task fields.
        function fromMessage(m, old) {
          const at = Date.parse(m.emitted_at) / 1000, e = m.evidence || {};
          const t = Object.assign({}, old || {}, {
            id: m.task_id, kind: m.kind === 'escalation' || m.kind === 'update' ? (old ? old.kind : 'dispatch') : m.kind,
            state: m.state, tier: m.tier, division_code: m.division_code, grid_code: m.grid_code, category: m.category,
            priority: m.priority, respond_by: Date.parse(m.respond_by) / 1000, resolve_by: Date.parse(m.resolve_by) / 1000,
            overdue: m.overdue, lon: m.lon, lat: m.lat, village_name: m.village_name || (old && old.village_name),
            township_name: m.township_name || (old && old.township_name), alerts: e.alert_count, reports: e.report_count,
            source: e.alert_count > 0 && e.report_count > 0 ? 'both' : (e.alert_count > 0 ? 'camera' : 'report')
          });
          if (!old) { t.created_at = at; t.handed_at = at; t.escalations = 0; }
          if (m.previous_division_code || m.kind === 'escalation' && old && old.tier !== m.tier) t.handed_at = at;
          if (old && old.state !== 'open' && m.state === 'open') t.handed_at = at;
          return t;
        }

        function fillRow(tr, t) {
          tr.replaceChildren(el('td', '', 'cd'), el('td', TIER[t.tier] || t.tier),
            el('td', [t.township_name, t.village_name].filter(Boolean).join(' ') || t.grid_code),
            el('td', t.category), el('td', SOURCE[t.source] || t.source), el('td', '', 'age'), el('td', t.state, 'state'));
          tr.classList.toggle('closed', TERMINAL.has(t.state));
          tick(tr, t);
        }
        function rowFor(t) {
          const tr = document.createElement('tr');
          tr.dataset.taskId = t.id;
          tr.addEventListener('click', () => select(t.id));
          fillRow(tr, t);
          if (t.id === selected) tr.classList.add('selected');
          return tr;
        }
        function tick(tr, t) {
          const cd = tr.querySelector('td.cd'), age = tr.querySelector('td.age');
          if (TERMINAL.has(t.state)) { cd.textContent = '—'; } else { cd.textContent = clock(deadline(t) - now()); }
          age.textContent = clock(now() - t.created_at);
          const u = urgency(t);
          tr.classList.toggle('late', u === 'late');
          tr.classList.toggle('soon', u === 'soon');
        }
        function rowOf(id) { return document.querySelector('tr[data-task-id="' + CSS.escape(id) + '"]'); }

        function renderQueue() {
          const body = $('rows');
          body.replaceChildren(...order.map((id) => rowFor(tasks.get(id))));
          $('empty').hidden = order.length > 0;
          fresh = 0; banner();
        }
        function banner() {
          const b = $('new-banner');
          b.hidden = fresh === 0;
          b.textContent = fresh + ' new 新事项 · sort by deadline 按时限排序';
        }

        function renderStrip(s, scopeName) {
          $('scope-name').textContent = scopeName ? scopeName + ' (' + me.scope + ')' : me.scope;
          $('s-open').textContent = s.open; $('s-new').textContent = s.new; $('s-closed').textContent = s.closed;
          $('s-overdue').textContent = s.overdue; $('s-escalated').textContent = s.escalated;
          $('s-camera').textContent = s.camera_online_pct === null || s.camera_online_pct === undefined ? '–' : s.camera_online_pct + '%';
          $('ranked').replaceChildren(...(s.ranked || []).slice(0, 10).map((r) => el('li', r.name + ' ' + r.overdue + ' / ' + r.open)));
        }

        async function loadSnapshot(sort) {
          const snap = await api('/api/snapshot');
          skew = snap.now - Date.now() / 1000;
          renderStrip(snap.strip, snap.scope_name);
          if (sort) {
            tasks.clear(); order = [];
            for (const t of snap.tasks) { tasks.set(t.id, t); order.push(t.id); }
            renderQueue();
          }
          drawMap();
        }
        function refreshStripSoon() {
          if (stripTimer) return;
          stripTimer = setTimeout(async () => { stripTimer = null; try { const s = await api('/api/snapshot?only=strip'); renderStrip(s.strip, s.scope_name); } catch (e) {} }, 5000);
        }

        // The map: the scope's grids (SVG paths from PostGIS, y = -latitude), drawn once, shaded by
        // their open and overdue tasks, and the tasks as points (redrawn, at most once a second).
        // Longitude is scaled by cos(latitude).
        const SVG = 'http://www.w3.org/2000/svg';
        let mapK = 1, mapR = 0, gridPaths = new Map(), pointLayer = null, mapPending = false;
        function buildMap() {
          if (!mapData || !mapData.box || mapData.box[0] === null) return;
          const [x0, y0, x1, y1] = mapData.box;
          mapK = Math.cos((y0 + y1) / 2 * Math.PI / 180);
          const w = Math.max((x1 - x0) * mapK, 1e-4), h = Math.max(y1 - y0, 1e-4), pad = Math.max(w, h) * 0.03;
          mapR = Math.max(w, h) / 120;
          const svg = $('map');
          svg.setAttribute('viewBox', [x0 * mapK - pad, -y1 - pad, w + 2 * pad, h + 2 * pad].join(' '));
          const grids = document.createElementNS(SVG, 'g');
          grids.setAttribute('transform', 'scale(' + mapK + ',1)');
          for (const g of mapData.grids) {
            const p = document.createElementNS(SVG, 'path');
            p.setAttribute('d', g.d);
            const title = document.createElementNS(SVG, 'title');
            title.textContent = g.name + ' ' + g.code;
            p.appendChild(title);
            grids.appendChild(p);
            gridPaths.set(g.code, { path: p, title: title, name: g.name, shade: '' });
          }
          pointLayer = document.createElementNS(SVG, 'g');
          svg.replaceChildren(grids, pointLayer);
        }
        function drawMap() {
          if (mapPending) return;
          mapPending = true;
          setTimeout(() => { mapPending = false; redrawMap(); }, 250);
        }
        function redrawMap() {
          if (!pointLayer) return;
          const counts = new Map(), points = [];
          for (const id of order) {
            const t = tasks.get(id); if (TERMINAL.has(t.state)) continue;
            const c = counts.get(t.grid_code) || { open: 0, late: 0 };
            const u = urgency(t);
            c.open++; if (u === 'late') c.late++;
            counts.set(t.grid_code, c);
            const circle = document.createElementNS(SVG, 'circle');
            circle.setAttribute('cx', t.lon * mapK); circle.setAttribute('cy', -t.lat); circle.setAttribute('r', mapR);
            circle.setAttribute('class', [u, t.id === selected ? 'selected' : ''].join(' ').trim());
            circle.dataset.taskId = t.id;
            circle.addEventListener('click', () => select(t.id));
            points.push(circle);
          }
          for (const [code, g] of gridPaths) {
            const c = counts.get(code), shade = c ? (c.late ? 'late' : 'open') : '';
            if (shade === g.shade) continue;
            g.shade = shade;
            if (shade) g.path.setAttribute('class', shade); else g.path.removeAttribute('class');
            g.title.textContent = g.name + ' ' + code + (c ? ': ' + c.open + ' open, ' + c.late + ' overdue' : '');
          }
          pointLayer.replaceChildren(...points);
        }

        // The selected task: its facts, history and evidence are redrawn; the note form is not.
        async function select(id) {
          selected = id;
          document.querySelectorAll('tr.selected').forEach((r) => r.classList.remove('selected'));
          const row = rowOf(id); if (row) row.classList.add('selected');
          $('detail').hidden = false;
          if ($('detail-task-id').textContent !== id) { $('action-result').textContent = ''; $('action-result').className = ''; }
          $('detail-task-id').textContent = id;
          drawMap();
          await loadDetail(id);
        }
        async function loadDetail(id) {
          let d;
          try { d = await api('/api/tasks/' + encodeURIComponent(id)); } catch (e) { $('detail-info').textContent = e.message; return; }
          if (selected !== id) return;
          const t = d.task, m = d.message || {}, dl = el('dl');
          const facts = [['Kind 类型', t.kind], ['State 状态', t.state + (t.overdue ? ' · overdue 超时' : '')],
            ['At 责任单位', (t.division_name || '') + ' ' + t.division_code + ' (' + t.tier + ')'], ['Grid 网格', t.grid_code],
            ['Category 类别', t.category + ' · priority ' + t.priority], ['Respond by 签收时限', when(t.respond_by)],
            ['Resolve by 办结时限', when(t.resolve_by)], ['Evidence 证据', t.alerts + ' alerts, ' + t.reports + ' reports'],
            ['Camera 摄像机', m.camera_name], ['Description 描述', m.description]];
          for (const [k, v] of facts) { if (v === undefined || v === null || v === '') continue; dl.append(el('dt', k), el('dd', String(v))); }
          const links = el('dd');
          for (const u of m.media || []) {
            if (!/^https?:\/\//.test(u)) continue;
            const a = el('a', u); a.href = u; a.target = '_blank'; a.rel = 'noopener noreferrer'; links.append(a, el('br'));
          }
          if (links.childNodes.length) dl.append(el('dt', 'Media 影像'), links);
          $('detail-info').replaceChildren(dl);
          $('detail-history').replaceChildren(...d.history.map((h) => el('li', when(h.at) + '  ' + h.event + ' @' + h.division_code
            + (h.from_division_code ? ' ← ' + h.from_division_code : '') + (h.actor ? ' · ' + h.actor : '') + (h.note ? ': ' + h.note : ''))));
          $('detail-evidence').replaceChildren(...d.evidence.map((e) => el('li', when(e.observed_at) + '  ' + e.source + ' ' + e.source_id
            + (e.camera ? ' · ' + e.camera : (e.device_id ? ' · ' + e.device_id : '')) + (e.worker_id ? ' · ' + e.worker_id : '')
            + (typeof e.description === 'string' ? ': ' + e.description : ''))));
        }

        async function act(action) {
          if (!selected) return;
          const out = $('action-result'), note = $('note').value;
          out.className = ''; out.textContent = '…';
          try {
            await api('/api/tasks/' + encodeURIComponent(selected) + '/actions', {
              method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf() },
              body: JSON.stringify({ action: action, note: note })
            });
            out.className = 'ok'; out.textContent = action + ': done 已提交';
            $('note').value = '';
            const id = selected;
            // An escalation can hand the task to a division outside this user's scope: its
            // messages stop coming here, so the row says so (it goes at the next sort).
            try { await api('/api/tasks/' + encodeURIComponent(id)); loadDetail(id); } catch (e) {
              const t = tasks.get(id), row = rowOf(id);
              if (t) { t.state = 'left your scope'; t.left = true; }
              if (row) { row.classList.add('closed'); row.querySelector('td.state').textContent = 'left your scope 已移出'; }
              $('detail-info').textContent = 'The task is no longer in your scope. 已移交上级';
              drawMap();
            }
          } catch (e) {
            out.className = 'bad'; out.textContent = action + ': ' + e.message;
          }
        }

        // Live: each task message updates its row in place or adds a new row at the end.
        function onMessage(m) {
          const old = tasks.get(m.task_id);
          if (!old && TERMINAL.has(m.state)) return;
          const t = fromMessage(m, old);
          tasks.set(t.id, t);
          if (old) {
            const row = rowOf(t.id); if (row) fillRow(row, t);
          } else {
            order.push(t.id);
            const row = rowFor(t); row.classList.add('fresh');
            $('rows').appendChild(row);
            $('empty').hidden = true;
            fresh++; banner();
          }
          drawMap();
          refreshStripSoon();
          if (selected === t.id) loadDetail(t.id);
        }
        function listen() {
          const es = new EventSource('/api/events');
          es.addEventListener('open', () => {
            $('live').textContent = 'live 实时'; $('live').className = 'live on';
            if (connectedOnce) loadSnapshot(true).catch(() => {});
            connectedOnce = true;
          });
          es.addEventListener('task', (e) => { try { onMessage(JSON.parse(e.data)); } catch (err) { console.error(err); } });
          es.addEventListener('error', () => { $('live').textContent = 'reconnecting… 重连中'; $('live').className = 'live off'; });
        }

        async function start() {
          me = await api('/api/me');
          $('me').textContent = me.name + ' · ' + me.role;
          const canAct = me.role === 'dispatcher';
          $('actions').hidden = !canAct; $('read-only').hidden = canAct;
          document.querySelectorAll('#actions button[data-action]').forEach((b) => b.addEventListener('click', () => act(b.dataset.action)));
          $('new-banner').addEventListener('click', () => loadSnapshot(true));
          $('logout').addEventListener('click', async () => {
            try { await api('/logout', { method: 'POST', headers: { 'X-CSRF-Token': csrf() } }); } catch (e) {}
            location.href = '/login';
          });
          mapData = await api('/api/map');
          buildMap();
          await loadSnapshot(true);
          listen();
          setInterval(() => {
            for (const id of order) { const row = rowOf(id); if (row) tick(row, tasks.get(id)); }
          }, 1000);
          setInterval(drawMap, 15000);
        }
        document.addEventListener('DOMContentLoaded', () => { start().catch((e) => { $('live').textContent = e.message; }); });
        """#
}
