/// The console's page, script and style, served by the console itself (no request leaves its origin).
enum ConsoleAssets {
    static func login(error: String?) -> String {
        """
        <!doctype html>
        <html lang="zh-CN"><head><meta charset="utf-8"><title>联动 值班台 Liandong console - log in</title>
        <meta name="viewport" content="width=device-width, initial-scale=1"><link rel="stylesheet" href="/console.css"></head>
        <body class="login"><form method="post" action="/login" class="login-form">
        <h1>联动 值班台 <small>Liandong duty console</small></h1>
        \(error.map { "<p class=\"error\" id=\"login-error\">\(escape($0))</p>" } ?? "")
        <label>User 用户 <input name="user" id="user" autocomplete="username" required autofocus></label>
        <label>Password 密码 <input name="password" id="password" type="password" autocomplete="current-password" required></label>
        <button type="submit" id="login">Log in 登录</button>
        </form></body></html>
        """
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
