extension ConsoleAssets {
    /// The page: the strip on top, the queue on the left, the map and the selected task on the right.
    static let console = """
        <!doctype html>
        <html lang="zh-CN"><head><meta charset="utf-8"><title>联动 值班台 Liandong console</title>
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <link rel="stylesheet" href="/console.css"><script src="/console.js" defer></script></head>
        <body>
        <header id="strip">
          <div class="who"><b id="scope-name">…</b> <span id="me"></span>
            <span id="live" class="live off">connecting…</span>
            <button id="logout" type="button">Log out 退出</button></div>
          <div class="figures">
            <div><b id="s-open">–</b><span>open 在办</span></div>
            <div><b id="s-new">–</b><span>new today 今日新增</span></div>
            <div><b id="s-closed">–</b><span>closed today 今日办结</span></div>
            <div class="bad"><b id="s-overdue">–</b><span>overdue 超时</span></div>
            <div><b id="s-escalated">–</b><span>escalated today 今日上报/督办</span></div>
            <div><b id="s-camera">–</b><span>cameras online 在线率</span></div>
          </div>
          <ol id="ranked" title="overdue tasks by division 超时排名"></ol>
        </header>
        <main>
          <section id="queue-pane">
            <button id="new-banner" type="button" hidden></button>
            <table id="queue"><thead><tr><th>Due 时限</th><th>Tier 层级</th><th>Place 地点</th><th>Category 类别</th>
              <th>Source 来源</th><th>Age 已过</th><th>State 状态</th></tr></thead><tbody id="rows"></tbody></table>
            <p id="empty" hidden>No open task in your scope. 暂无在办事项</p>
          </section>
          <section id="side">
            <div id="map-box"><svg id="map" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="map of the scope"></svg></div>
            <div id="detail" hidden>
              <h2>Task <code id="detail-task-id"></code></h2>
              <div id="detail-info"></div>
              <form id="actions" autocomplete="off">
                <textarea id="note" rows="3" placeholder="Note / reason 备注、理由"></textarea>
                <div class="buttons">
                  <button type="button" data-action="accept">Acknowledge 签收</button>
                  <button type="button" data-action="note">Add note 备注</button>
                  <button type="button" data-action="escalate">Escalate 督办上报</button>
                  <button type="button" data-action="resolve">Close 办结</button>
                  <button type="button" data-action="false_alarm">False alarm 误报</button>
                </div>
                <p id="action-result" role="status"></p>
              </form>
              <p id="read-only" hidden>Viewer: read only. 只读</p>
              <h3>History 流转</h3><ol id="detail-history"></ol>
              <h3>Evidence 证据</h3><ul id="detail-evidence"></ul>
            </div>
          </section>
        </main>
        </body></html>
        """

    static let style = """
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.35 "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif; background: #0f1720; color: #e6edf3; }
        body.login { display: flex; align-items: center; justify-content: center; min-height: 100vh; }
        .login-form { background: #18222d; padding: 24px 28px; border-radius: 8px; display: grid; gap: 12px; min-width: 320px; }
        .login-form input { display: block; width: 100%; padding: 6px; margin-top: 4px; }
        .error { color: #ff7b72; }
        header#strip { display: flex; flex-wrap: wrap; gap: 12px 24px; align-items: center; padding: 8px 12px; background: #18222d; border-bottom: 1px solid #2d3b4a; }
        .who { min-width: 260px; }
        .figures { display: flex; gap: 18px; }
        .figures div { display: flex; flex-direction: column; align-items: center; }
        .figures b { font-size: 22px; }
        .figures span { font-size: 11px; color: #9fb0c0; }
        .figures .bad b { color: #ff7b72; }
        #ranked { margin: 0; padding-left: 28px; font-size: 12px; columns: 2; column-gap: 36px; }
        #ranked li { white-space: nowrap; }
        .live { padding: 1px 6px; border-radius: 3px; font-size: 12px; }
        .live.on { background: #1f6f3f; } .live.off { background: #7a4a00; }
        main { display: grid; grid-template-columns: minmax(520px, 3fr) 2fr; gap: 8px; padding: 8px; height: calc(100vh - 92px); }
        #queue-pane { overflow: auto; }
        table { width: 100%; border-collapse: collapse; }
        th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid #243140; white-space: nowrap; }
        th { position: sticky; top: 0; background: #0f1720; font-weight: normal; color: #9fb0c0; font-size: 12px; }
        tr[data-task-id] { cursor: pointer; }
        tr.selected { outline: 2px solid #58a6ff; }
        tr.fresh td:first-child::after { content: " new"; color: #58a6ff; font-size: 11px; }
        tr.closed { opacity: .45; text-decoration: line-through; }
        td.cd { font-variant-numeric: tabular-nums; font-weight: bold; }
        tr.late td.cd, tr.late { color: #ff7b72; }
        tr.late { background: #3a1618; }
        tr.soon td.cd { color: #e3b341; }
        tr.soon { background: #33290f; }
        #new-banner { width: 100%; padding: 6px; margin-bottom: 6px; background: #1f4f8f; color: #fff; border: 0; border-radius: 4px; cursor: pointer; }
        #side { display: grid; grid-template-rows: 45% 55%; gap: 8px; min-height: 0; }
        #map-box { background: #0b1118; border: 1px solid #243140; min-height: 0; }
        #map { width: 100%; height: 100%; }
        #map path { fill: #1b2733; stroke: #3d5266; stroke-width: 1; vector-effect: non-scaling-stroke; }
        #map path.open { fill: #5a4a12; } #map path.late { fill: #6a1f22; }
        #map circle { fill: #58a6ff; stroke: #fff; stroke-width: 1; vector-effect: non-scaling-stroke; cursor: pointer; }
        #map circle.late { fill: #ff7b72; } #map circle.soon { fill: #e3b341; } #map circle.selected { stroke: #58a6ff; stroke-width: 3; }
        #detail { overflow: auto; background: #18222d; padding: 8px 12px; border-radius: 6px; }
        #detail h2 { margin: 0 0 6px; font-size: 15px; } #detail h3 { margin: 10px 0 4px; font-size: 13px; color: #9fb0c0; }
        #note { width: 100%; }
        .buttons { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 4px; }
        button { background: #2d3b4a; color: #e6edf3; border: 1px solid #3d5266; border-radius: 4px; padding: 4px 8px; cursor: pointer; }
        #action-result.ok { color: #56d364; } #action-result.bad { color: #ff7b72; }
        dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 10px; margin: 0; }
        dt { color: #9fb0c0; } dd { margin: 0; }
        a { color: #58a6ff; }
        """
}
