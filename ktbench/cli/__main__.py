from ktbench.cli import main

main()
