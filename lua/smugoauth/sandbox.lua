--- smugoauth.sandbox: the old name of smugoauth.apps.sandbox. @module smugoauth.sandbox
return require "smugoauth.apps.sandbox"
