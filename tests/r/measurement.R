# Reference values for exresearch.scoring and exresearch.aggregate (issue 5).
#
# Run from the repository root:   Rscript tests/r/measurement.R
#
# Exports real published data sets to tests/data/measurement_*.csv, reads them
# back (so the references are computed on exactly the exported values) and writes
# tests/data/measurement_reference.json. The Python tests never call R.
#
# Packages: multilevel (Bliese), psych (Revelle), jsonlite; Debian packages
# r-cran-multilevel, r-cran-psych, r-cran-jsonlite.
#
# Conventions validated:
#  - Cronbach's alpha = psych::alpha()$total$raw_alpha on the complete cases of
#    the scale's items (listwise deletion within the scale; with complete data
#    psych's default use="pairwise" is the same), Feldt CI = psych::alpha()$feldt
#    (psych::alpha.ci with n.obs = complete cases).
#  - item statistics: psych::alpha()$item.stats r.drop and $alpha.drop raw_alpha
#    on complete cases; item mean/sd on all answers (na.rm) after reverse keying.
#  - ICC(1), ICC(2): multilevel::ICC1 / ICC2 on aov(score ~ as.factor(unit)),
#    the score being the mean of the scale's items on complete cases.
#  - rwg(j): multilevel::rwg.j(items, unit, ranvar = (A^2 - 1) / 12) and, for a
#    single item, multilevel::rwg.

suppressPackageStartupMessages({
  library(multilevel)
  library(psych)
  library(jsonlite)
})

out_dir <- file.path("tests", "data")
export <- function(df, name) {
  path <- file.path(out_dir, paste0("measurement_", name, ".csv"))
  write.csv(df, path, row.names = FALSE, na = "")
  read.csv(path)
}

alpha_ref <- function(items, keys = NULL) {
  cc <- na.omit(items)
  a <- if (is.null(keys)) psych::alpha(cc, warnings = FALSE)
       else psych::alpha(cc, keys = keys, warnings = FALSE)
  list(
    n = nrow(cc), n_items = ncol(cc),
    alpha = a$total$raw_alpha,
    ci_low = as.numeric(unlist(a$feldt$lower.ci)),
    ci_high = as.numeric(unlist(a$feldt$upper.ci)),
    items = I(colnames(cc)),
    r_drop = unname(a$item.stats$r.drop),
    alpha_if_deleted = unname(a$alpha.drop$raw_alpha)
  )
}

icc_ref <- function(score, unit) {
  keep <- !is.na(score)
  mod <- aov(score[keep] ~ as.factor(unit[keep]))
  list(icc1 = multilevel::ICC1(mod), icc2 = multilevel::ICC2(mod),
       n = sum(keep), n_units = length(unique(unit[keep])))
}

rwg_ref <- function(items, unit, A) {
  ranvar <- (A^2 - 1) / 12
  r <- if (ncol(items) == 1) {
    x <- multilevel::rwg(items[[1]], unit, ranvar = ranvar)
    names(x)[2] <- "rwg.j"
    x
  } else multilevel::rwg.j(items, unit, ranvar = ranvar)
  list(unit = as.character(r$grpid), rwg_j = r$rwg.j, n = r$gsize,
       mean = mean(r$rwg.j, na.rm = TRUE), median = median(r$rwg.j, na.rm = TRUE))
}

ref <- list()

# ---- multilevel::bh1996 (Bliese & Halverson 1996): 7,382 soldiers in 99 companies.
data(bh1996, package = "multilevel")
bh <- export(bh1996[, c("GRP", "HRS", "COHES", "LEAD", "WBEING")], "bh1996")
ref$bh1996 <- list(
  HRS = icc_ref(bh$HRS, bh$GRP),
  COHES = icc_ref(bh$COHES, bh$GRP),
  LEAD = icc_ref(bh$LEAD, bh$GRP),
  WBEING = icc_ref(bh$WBEING, bh$GRP)
)
# rwg on the single item HRS is not meaningful (hours, not a Likert item): skipped.

# ---- multilevel::lq2002 (Bliese, Halverson & Schriesheim 2002): 2,042 soldiers, 49 companies.
data(lq2002, package = "multilevel")
lq_items <- list(
  lead = sprintf("LEAD%02d", 1:11),
  tsig = sprintf("TSIG%02d", 1:3),
  hostil = sprintf("HOSTIL%02d", 1:5)
)
lq_points <- list(lead = c(1, 5), tsig = c(1, 5), hostil = c(0, 4))
lq <- export(lq2002[, c("COMPID", unlist(lq_items))], "lq2002")
ref$lq2002 <- list()
for (s in names(lq_items)) {
  it <- lq[, lq_items[[s]], drop = FALSE]
  A <- lq_points[[s]][2] - lq_points[[s]][1] + 1
  cc <- complete.cases(it)
  ref$lq2002[[s]] <- list(
    points = lq_points[[s]],
    alpha = alpha_ref(it),
    icc = icc_ref(ifelse(cc, rowMeans(it), NA), lq$COMPID),
    rwg_j = rwg_ref(it, lq$COMPID, A)
  )
}
# a single item, to check the J = 1 case against multilevel::rwg
ref$lq2002$tsig01 <- list(
  points = c(1, 5),
  icc = icc_ref(lq$TSIG01, lq$COMPID),
  rwg_j = rwg_ref(lq[, "TSIG01", drop = FALSE], lq$COMPID, 5)
)

# ---- multilevel::bhr2000 (Bliese, Halverson & Rothberg 2000): 5,400 soldiers, 99 companies,
# 11 leadership-climate items on a 1-5 scale.
data(bhr2000, package = "multilevel")
bhr_items <- c("AF06", "AF07", "AP12", "AP17", "AP33", "AP34",
               "AS14", "AS15", "AS16", "AS17", "AS28")
bhr <- export(bhr2000[, c("GRP", bhr_items)], "bhr2000")
it <- bhr[, bhr_items]
ref$bhr2000 <- list(climate = list(
  points = c(1, 5),
  alpha = alpha_ref(it),
  icc = icc_ref(rowMeans(it), bhr$GRP),
  rwg_j = rwg_ref(it, bhr$GRP, 5)
))

# ---- psych::bfi (Revelle; SAPA project): 2,800 respondents, 25 items on 1-6, with missing answers.
data(bfi, package = "psych")
bfi_scales <- list(
  agreeableness = list(items = paste0("A", 1:5), reverse = c("A1")),
  conscientiousness = list(items = paste0("C", 1:5), reverse = c("C4", "C5")),
  extraversion = list(items = paste0("E", 1:5), reverse = c("E1", "E2")),
  neuroticism = list(items = paste0("N", 1:5), reverse = character(0)),
  openness = list(items = paste0("O", 1:5), reverse = c("O2", "O5"))
)
bf <- export(bfi[, unlist(lapply(bfi_scales, `[[`, "items"))], "bfi")
ref$bfi <- list()
for (s in names(bfi_scales)) {
  sc <- bfi_scales[[s]]
  it <- bf[, sc$items]
  keys <- if (length(sc$reverse)) sc$reverse else NULL
  rev_it <- it
  for (r in sc$reverse) rev_it[[r]] <- 1 + 6 - rev_it[[r]]
  ref$bfi[[s]] <- list(
    items = I(sc$items), reverse = I(sc$reverse), points = c(1, 6),
    alpha = alpha_ref(it, keys),
    item_mean = unname(colMeans(rev_it, na.rm = TRUE)),
    item_sd = unname(apply(rev_it, 2, sd, na.rm = TRUE)),
    item_n = unname(colSums(!is.na(rev_it)))
  )
}

ref$versions <- list(
  R = paste(R.version$major, R.version$minor, sep = "."),
  multilevel = as.character(packageVersion("multilevel")),
  psych = as.character(packageVersion("psych"))
)

writeLines(toJSON(ref, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"),
           file.path(out_dir, "measurement_reference.json"))

cat(sprintf("bh1996 HRS: ICC(1) = %.6f, ICC(2) = %.6f\n", ref$bh1996$HRS$icc1, ref$bh1996$HRS$icc2))
for (s in names(ref$lq2002)) {
  r <- ref$lq2002[[s]]
  cat(sprintf("lq2002 %s: ICC(1) = %.6f ICC(2) = %.6f rwg(j) mean = %.6f median = %.6f\n",
              s, r$icc$icc1, r$icc$icc2, r$rwg_j$mean, r$rwg_j$median))
}
r <- ref$bhr2000$climate
cat(sprintf("bhr2000 climate: alpha = %.6f ICC(1) = %.6f ICC(2) = %.6f rwg(j) mean = %.6f\n",
            r$alpha$alpha, r$icc$icc1, r$icc$icc2, r$rwg_j$mean))
for (s in names(ref$bfi)) {
  a <- ref$bfi[[s]]$alpha
  cat(sprintf("bfi %s: alpha = %.6f [%.6f, %.6f] n = %d\n", s, a$alpha, a$ci_low, a$ci_high, a$n))
}
