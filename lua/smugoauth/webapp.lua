--- smugoauth.webapp: the old name of smugoauth.apps.web. @module smugoauth.webapp
return require "smugoauth.apps.web"
