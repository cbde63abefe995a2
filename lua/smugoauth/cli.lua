--- smugoauth.cli: the old name of smugoauth.apps.cli. @module smugoauth.cli
return require "smugoauth.apps.cli"
