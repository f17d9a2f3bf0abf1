-- Current dossier facts move from the partition of the month they finished to that of their
-- last dated step (end, receipt, first payment or digitisation): a payment or a digitisation
-- after the end would otherwise sit in an earlier month than a question about it starts from,
-- and a question about today's payments could only find them by a skip index over every month
-- of the history (0.2 s at ten million dossiers). The facts and their day counts are emptied
-- and the refolder folds them again from the parts (a bulk rebuild on a big store: figures are
-- folded from the parts at question time meanwhile, exact but slow; `motcua replay` with the
-- services stopped does the same at once).
TRUNCATE TABLE IF EXISTS dossier_facts;

TRUNCATE TABLE IF EXISTS dossier_days;

TRUNCATE TABLE IF EXISTS facts_progress;
