"""The figures' answers the JSON routes (services/api/routes) and the public page
(services/api/page) both give: built once here, below both, so neither imports the other and the
two cannot disagree."""
