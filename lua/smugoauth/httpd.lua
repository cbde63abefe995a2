--- smugoauth.httpd: the old name of smugoauth.http.server (with its helpers
-- escape_html, parse_query, parse_cookies). @module smugoauth.httpd
return require "smugoauth.http.server"
