# plot.gp - bench_compare's chart: speedup over sequential per workload, one bar per executor.
# Called by bench_compare as
#   gnuplot -e "datafile='...'; outfile='....png'; nworkers=N; nseries=K" plot.gp
# datafile: a header line "workload <series>...", then one line per workload; "?" = not measured.
set terminal pngcairo size 1100,600 noenhanced font ",10"
set output outfile
set title sprintf("Speedup over sequential, %d workers (higher is better; log scale)\nC executors: over one lua_State on the calling thread; py-*: over a plain Python loop", nworkers)
set datafile missing "?"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key outside right top
set ylabel "speedup (x)"
set logscale y
set yrange [*:*]
set grid ytics
set xtics nomirror
set arrow from graph 0, first 1 to graph 1, first 1 nohead dashtype 2 lc rgb "#555555"
plot for [i=2:nseries+1] datafile using i:xtic(1) title columnheader(i)
