# chart.gp - the README's chart (docs/compare.png), drawn by scripts/chart.sh from one
# bench_compare run:
#   gnuplot -e "speedfile='...'; ratefile='...'; outfile='...png'; label='...'; machine='...'" \
#     docs/chart.gp
# speedfile: "workload gil process interp" then one line per workload (speedup over sequential)
# ratefile:  "workload sequential gil process interp" then tiny-submit, tiny-map (tasks/s)
set terminal pngcairo size 1100,900 noenhanced font ",11"
set output outfile
set datafile missing "?"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key outside right top
set grid ytics
set xtics nomirror
# one colour per executor in both panels: sequential, gil, process, interp
colors = "#999999 #9b59b6 #27ae60 #2e86de"
set multiplot layout 2,1 title sprintf("%s\n%s", label, machine) font ",12"
set title "Speedup over one Lua state on the calling thread (higher is better)"
set ylabel "speedup (x)"
set yrange [0:*]
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dashtype 2 lc rgb "#555555"
plot for [i=2:4] speedfile using i:xtic(1) title columnheader(i) lc rgb word(colors, i)
unset arrow 1
set title "Tiny tasks (x * 2): tasks per second, log scale (higher is better)"
set ylabel "tasks/s"
set logscale y
set yrange [*:*]
set format y "%.0e"
plot for [i=2:5] ratefile using i:xtic(1) title columnheader(i) lc rgb word(colors, i - 1)
unset multiplot
